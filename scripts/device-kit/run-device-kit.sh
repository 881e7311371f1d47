#!/bin/sh
# Unpacks the TabZero device kit beside this script into a temporary folder and runs it (see run.sh there):
# one JSON object on stdout, progress on stderr.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
tar -C "$DIR" -xJf "$HERE/tabzero-device-kit.tar.xz"
"$DIR/kit/run.sh"
