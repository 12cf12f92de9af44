#!/usr/bin/env bash
# Build the e2e driver offline from Debian's Go packages (GOPATH mode, /usr/share/gocode/src)
# and install it as /usr/local/bin/hinkskalle-libclient. Usage: build.sh [path/to/go]
set -euo pipefail
GO=${1:-$(command -v go || echo /usr/lib/go-1.23/bin/go)}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/hinkskalle-libclient"
cp "$here/driver/main.go" "$work/src/hinkskalle-libclient/"
cd "$work/src/hinkskalle-libclient"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOFLAGS= GOPROXY=off GOCACHE="$work/cache" \
    "$GO" build -o /usr/local/bin/hinkskalle-libclient .
echo "built /usr/local/bin/hinkskalle-libclient with $("$GO" version)"
