"""blob_response: full, ranged and HEAD downloads, through the server's file_wrapper
(waitress over real HTTP) and through BlobIter (webtest, which has no file_wrapper)."""
import os

import pytest
import requests
import webtest
from pyramid.config import Configurator

from hinkskalle.services.storage import BlobIter
from hinkskalle.testing import live_server_for
from hinkskalle.views.common import blob_response

SIZE = 3 * 1024 * 1024 + 123     # several 1 MiB blocks and a partial one


@pytest.fixture(scope="module")
def blob(tmp_path_factory):
    path = tmp_path_factory.mktemp("blob") / "data"
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture(scope="module")
def app(blob):
    def view(request):
        return blob_response(request, str(blob), SIZE, headers={"Docker-Content-Digest": "x"})

    with Configurator() as config:
        config.add_route("blob", "/blob")
        config.add_view(view, route_name="blob")
        return config.make_wsgi_app()


RANGES = [("bytes=0-99", 0, 100), ("bytes=1048570-2097160", 1048570, 2097161),
          ("bytes=-10", SIZE - 10, SIZE), (f"bytes={SIZE - 5}-", SIZE - 5, SIZE)]


def test_over_real_http_with_the_servers_file_wrapper(app, blob):
    data = blob.read_bytes()
    with live_server_for(app) as server, requests.Session() as session:
        url = f"{server.url}/blob"
        full = session.get(url, timeout=30)
        assert full.status_code == 200
        assert full.headers["Content-Length"] == str(SIZE)
        assert full.headers["Accept-Ranges"] == "bytes"
        assert full.headers["Docker-Content-Digest"] == "x"
        assert full.content == data
        for header, start, stop in RANGES:
            part = session.get(url, headers={"Range": header}, timeout=30)
            assert part.status_code == 206, header
            assert part.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
            assert part.content == data[start:stop], header
        head = session.head(url, timeout=30)
        assert head.headers["Content-Length"] == str(SIZE) and head.content == b""
        bad = session.get(url, headers={"Range": f"bytes={SIZE}-"}, timeout=30)
        assert bad.status_code == 416


def test_without_file_wrapper(app, blob):
    data = blob.read_bytes()
    client = webtest.TestApp(app)
    full = client.get("/blob")
    assert full.content_length == SIZE and full.body == data
    for header, start, stop in RANGES:
        part = client.get("/blob", headers={"Range": header}, status=206)
        assert part.body == data[start:stop], header
    assert client.head("/blob").content_length == SIZE


def test_blob_iter_ranges_hand_a_window_of_the_file_to_the_wrapper(blob):
    class Wrapper:
        def __init__(self, file, block_size):
            self.file, self.block_size = file, block_size

    ranged = BlobIter(str(blob), file_wrapper=Wrapper).app_iter_range(1000, 2000)
    assert isinstance(ranged, Wrapper) and ranged.file.tell() == 1000
    assert ranged.file.seek(0, os.SEEK_END) == 2000
    ranged.file.close()
    plain = BlobIter(str(blob)).app_iter_range(1000, 2000)
    assert b"".join(plain) == blob.read_bytes()[1000:2000]


@pytest.mark.parametrize("start, stop", [(1000, 2000), (1048570, 2097161), (SIZE - 5, SIZE), (0, SIZE)])
def test_servers_file_wrappers_read_no_further_than_the_range(blob, start, stop):
    """gunicorn without sendfile iterates its wrapper and drops what lies past Content-Length:
    a 64 MiB Range of a 1 GiB blob used to read the blob to its end. waitress measures the
    file by seeking to its end."""
    from gunicorn.http.wsgi import FileWrapper
    from waitress.buffers import ReadOnlyFileBasedBuffer
    data = blob.read_bytes()

    gunicorn_iter = BlobIter(str(blob), file_wrapper=FileWrapper).app_iter_range(start, stop)
    read = list(gunicorn_iter)
    gunicorn_iter.close()
    assert b"".join(read) == data[start:stop]

    waitress_buffer = BlobIter(str(blob), file_wrapper=ReadOnlyFileBasedBuffer).app_iter_range(start, stop)
    assert waitress_buffer.prepare() == stop - start
    assert waitress_buffer.get(SIZE, skip=True) == data[start:stop]
    waitress_buffer.close()
