#!/usr/bin/env bash
# The README's test command: installs what the tests need, then checks
# formatting and vet, tests what differs in a build without cgo (the
# PCMU-only path users get with CGO_ENABLED=0), runs every test with the
# race detector (but media/mediatest's, see below), and in CI runs each
# fuzz target briefly.
#
# With CI=true or DIALTONE_FULL=1, scripts/deps.sh also installs the
# programs the integration tests run (redis-server, Chromium, iproute2,
# coturn, ...), and those tests fail instead of skipping when one is missing
# (internal/testenv).
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

# The packages that must build without cgo (no Opus, no malgo, no echo
# canceller); the tests run again without cgo where the code differs:
# calls and rooms on G.711, the devices without malgo, the processing as a
# pass-through.
pure=(./call/... ./negotiation/... ./signaling/... ./audio/... ./janus/... ./internal/...)
CGO_ENABLED=0 go vet "${pure[@]}" ./media/apm/
CGO_ENABLED=0 go test -count=1 -p 1 -timeout 10m ./call/ ./audio/... ./media/apm/

# Everything with the race detector, except the measurement helpers of
# media/mediatest: single-goroutine signal processing (speech quality,
# delay search) that the detector slows tenfold and has nothing to check
# in; they run without it.
go test -race -count=1 -p 1 -timeout 15m $(go list ./... | grep -v '/media/mediatest$')
go test -count=1 -p 1 -timeout 10m ./media/mediatest/

# In CI, each fuzz target runs briefly on top of its seed corpus; a crasher
# it finds is written under the package's testdata/fuzz and, committed,
# runs as a regression test with every `go test`.
if [[ "${CI:-}" == "true" ]]; then
	for target in ./signaling:FuzzDecode ./signaling:FuzzDecodeFast \
		./signaling/server:FuzzServerFrames ./signaling/server:FuzzToken; do
		go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 10s "${target%%:*}"
	done
fi
