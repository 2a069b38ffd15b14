#!/usr/bin/env bash
# The README's test command: installs what the tests need, then checks
# formatting, vet, the cgo-free build of the pure-Go packages, and runs every
# test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
CGO_ENABLED=0 go build ./negotiation/... ./signaling/... ./call/... ./audio/...
go test -race -count=1 -p 1 -timeout 15m ./...
