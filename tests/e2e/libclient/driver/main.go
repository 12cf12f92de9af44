// Command hinkskalle-libclient drives Apptainer's library and key clients (the Debian
// packaged Go libraries that apptainer itself uses) against a Hinkskalle server, one
// operation per invocation. Results are printed as JSON on stdout; the client's own log
// lines go to stderr. Used by tests/e2e/libclient/test_libclient.py.
package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	library "github.com/apptainer/container-library-client/client"
	keys "github.com/apptainer/container-key-client/client"
)

// Library CLIs announce themselves like this; the server answers their downloads with a 303
// to a Range-capable URL, which is what makes ConcurrentDownloadImage download in parts.
const cliAgent = "apptainer/1.0.0 (hinkskalle e2e driver)"

type stderrLogger struct{}

func (stderrLogger) Log(v ...interface{})                 { fmt.Fprintln(os.Stderr, v...) }
func (stderrLogger) Logf(format string, v ...interface{}) { fmt.Fprintf(os.Stderr, format+"\n", v...) }

// bearer adds the token to every request, as the apptainer CLI does for its own keyserver.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

// elapsed reports on stderr how long the library client's own call took (benchmarks read it:
// the driver's start and the pull's final checksum are not part of the transfer).
func elapsed(began time.Time) {
	fmt.Fprintf(os.Stderr, "elapsed %.6f\n", time.Since(began).Seconds())
}

func emit(v interface{}) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail(err)
	}
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		fail(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// prePass is what the library client does first in every push (its calculateChecksums is not
// exported): md5 and sha256 of the whole file, in two goroutines fed by one read through a
// pipe. Benchmarks time it to show what a push costs the client before it sends a byte.
func prePass(r io.Reader) (string, string, error) {
	pr, pw := io.Pipe()
	md5h, shah := md5.New(), sha256.New()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(shah, pr)
		pr.CloseWithError(err)
		done <- err
	}()
	_, err := io.Copy(md5h, io.TeeReader(r, pw))
	pw.CloseWithError(err)
	if shaErr := <-done; err == nil {
		err = shaErr
	}
	return hex.EncodeToString(md5h.Sum(nil)), hex.EncodeToString(shah.Sum(nil)), err
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: hinkskalle-libclient <command> [flags]"))
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	token := fs.String("token", "", "API token")
	ref := fs.String("ref", "", "entity/collection/container")
	tag := fs.String("tag", "latest", "tag (pull, image, delete)")
	tags := fs.String("tags", "latest", "comma separated tags (push)")
	arch := fs.String("arch", "amd64", "architecture")
	file := fs.String("file", "", "SIF file (push) or output file (pull)")
	concurrent := fs.Bool("concurrent", false, "pull in concurrent ranges")
	partSize := fs.Int64("part-size", 1<<20, "range size of concurrent pulls")
	value := fs.String("value", "", "search text")
	signed := fs.Bool("signed", false, "search signed images only")
	containerID := fs.String("container-id", "", "container id (tags)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	agent := "hinkskalle-e2e-driver"
	if *concurrent {
		agent = cliAgent
	}
	lib, err := library.NewClient(&library.Config{BaseURL: *url, AuthToken: *token, UserAgent: agent,
		Logger: stderrLogger{}})
	if err != nil {
		fail(err)
	}

	switch cmd {
	case "version":
		v, err := lib.GetVersion(ctx)
		if err != nil {
			fail(err)
		}
		emit(v)
	case "push":
		f, err := os.Open(*file)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		began := time.Now()
		done, err := lib.UploadImage(ctx, f, *ref, *arch, strings.Split(*tags, ","), "pushed by the e2e driver", nil)
		if err != nil {
			fail(err)
		}
		elapsed(began)
		emit(done)
	case "checksums":
		f, err := os.Open(*file)
		if err != nil {
			fail(err)
		}
		defer f.Close()
		began := time.Now()
		md5sum, sha, err := prePass(f)
		if err != nil {
			fail(err)
		}
		elapsed(began)
		emit(map[string]string{"md5": md5sum, "sha256": sha})
	case "image":
		img, err := lib.GetImage(ctx, *arch, *ref+":"+*tag)
		if err != nil {
			fail(err)
		}
		emit(img)
	case "pull":
		out, err := os.Create(*file)
		if err != nil {
			fail(err)
		}
		began := time.Now()
		if *concurrent {
			err = lib.ConcurrentDownloadImage(ctx, out, *arch, *ref, *tag,
				&library.Downloader{Concurrency: 4, PartSize: *partSize, BufferSize: 32 * 1024}, nil)
		} else {
			err = lib.DownloadImage(ctx, out, *arch, *ref, *tag, nil)
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			fail(err)
		}
		elapsed(began)
		emit(map[string]string{"sha256": fileSHA256(*file)})
	case "tags":
		// The library client keeps its tag calls internal (push uses them); read the v2
		// arch tag map the same way, decoded with the client's own response type.
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(*url, "/")+"/v2/tags/"+*containerID, nil)
		if err != nil {
			fail(err)
		}
		req.Header.Set("Authorization", "Bearer "+*token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			fail(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			fail(fmt.Errorf("tags: HTTP %d", res.StatusCode))
		}
		var tagsResponse library.ArchTagsResponse
		if err := json.NewDecoder(res.Body).Decode(&tagsResponse); err != nil {
			fail(err)
		}
		emit(tagsResponse.Data)
	case "search":
		args := map[string]string{"value": *value, "arch": *arch}
		if *signed {
			args["signed"] = "true"
		}
		results, err := lib.Search(ctx, args)
		if err != nil {
			fail(err)
		}
		emit(results)
	case "delete":
		if err := lib.DeleteImage(ctx, *ref+":"+*tag, *arch); err != nil {
			fail(err)
		}
		emit(map[string]bool{"deleted": true})
	case "key-push", "key-search", "key-pull":
		kc, err := keys.NewClient(keys.OptBaseURL(*url), keys.OptUserAgent(agent),
			keys.OptHTTPClient(&http.Client{Transport: bearer{*token, http.DefaultTransport}}))
		if err != nil {
			fail(err)
		}
		switch cmd {
		case "key-push":
			text, err := os.ReadFile(*file)
			if err != nil {
				fail(err)
			}
			if err := kc.PKSAdd(ctx, string(text)); err != nil {
				fail(err)
			}
			emit(map[string]bool{"added": true})
		case "key-search":
			text, err := kc.PKSLookup(ctx, &keys.PageDetails{Size: 256}, *value, keys.OperationIndex, true, false,
				[]string{keys.OptionMachineReadable})
			if err != nil {
				fail(err)
			}
			emit(map[string]string{"index": text})
		case "key-pull":
			fingerprint, err := hex.DecodeString(*value)
			if err != nil {
				fail(err)
			}
			text, err := kc.GetKey(ctx, fingerprint)
			if err != nil {
				fail(err)
			}
			emit(map[string]string{"key": text})
		}
	default:
		fail(fmt.Errorf("unknown command %q", cmd))
	}
}
