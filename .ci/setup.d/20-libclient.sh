#!/usr/bin/env bash
# Go toolchain and the Debian-packaged Apptainer library/key clients for the library:// e2e
# driver (tests/e2e/libclient). Go comes from bookworm-backports (golang-1.23-go); without
# backports, Debian 12's golang-1.19-go builds the driver too. Everything builds offline from
# /usr/share/gocode/src (GOPATH mode).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! apt-cache show golang-1.23-go > /dev/null 2>&1; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
    apt-get update -qq || true
fi
if apt-get install -y -qq --no-install-recommends golang-1.23-go > /dev/null 2>&1; then
    GO=/usr/lib/go-1.23/bin/go
else
    echo "bookworm-backports unreachable: falling back to golang-1.19-go"
    apt-get install -y -qq --no-install-recommends golang-1.19-go > /dev/null
    GO=/usr/lib/go-1.19/bin/go
fi
"$GO" version
tests/e2e/libclient/build.sh "$GO"
