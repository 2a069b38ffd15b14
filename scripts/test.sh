#!/usr/bin/env bash
# The README's test command: installs what the tests need, then checks
# formatting and vet, tests what differs in a build without cgo (the
# PCMU-only path users get with CGO_ENABLED=0), runs every test with the
# race detector but the measurements (see below), those without it, the
# C side of the sound devices and the echo canceller with AddressSanitizer,
# and in CI runs each fuzz target briefly.
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
# canceller); the tests run again without cgo where the code differs: the
# devices without malgo, the processing as a pass-through, and the call
# tests whose audio goes through the codec (calls, rooms, tones, DTMF and
# recordings on G.711; a Janus room refused for want of Opus). Signaling,
# ICE and the state machine are the same code in both builds.
pure=(./call/... ./negotiation/... ./signaling/... ./audio/... ./janus/... ./internal/...)
CGO_ENABLED=0 go vet "${pure[@]}" ./media/apm/
CGO_ENABLED=0 go test -count=1 -p 1 -timeout 10m ./audio/... ./media/apm/
CGO_ENABLED=0 go test -count=1 -p 1 -timeout 10m \
	-run '^(Example.*|TestHappyPath.*|TestTones.*|TestDTMF|TestMuteTextAndStats|Test.*Record.*|TestRoomFourMembers.*|TestRoomMuteAndTalking|TestJanusRoomThreeMembers|TestCodecDelay|TestMOS.*)$' ./call/

# Everything with the race detector. Test files built only without it
# (`//go:build !race`) hold measurements: signal processing in one
# goroutine, simulations on a simulated clock, and real-time runs with
# bounds on delay and SNR, which the detector slows tenfold and has nothing
# to check in (the other tests check the same code across goroutines).
# They run next, without it: the tests of every such file.
go test -race -count=1 -p 1 -timeout 15m ./...
declare -A norace=() # package directory → its tests' names, "A|B|..."
while read -r f; do
	names=$(sed -n 's/^func \(Test[A-Za-z0-9_]*\)(t \*testing\.T).*/\1/p' "$f" | paste -sd'|')
	[[ -z "$names" ]] && continue
	d=$(dirname "$f")
	norace[$d]="${norace[$d]:+${norace[$d]}|}$names"
done < <(grep -rl --include='*_test.go' '^//go:build.*!race' . | sort)
for d in $(printf '%s\n' "${!norace[@]}" | sort); do
	go test -count=1 -p 1 -timeout 10m -run "^(${norace[$d]})\$" "$d"
done

# The C side of the sound devices (miniaudio, our own C) and of the echo
# canceller (our C++ wrapper) with AddressSanitizer, which sees what the
# race detector cannot: C memory used after it is freed or beyond its
# end (a miniaudio context freed while its devices still read it). The
# devices' life-cycle tests; leaks are not checked (malgo keeps a small
# block per context, libpulse what a killed server leaves).
asan="-O1 -g -fsanitize=address -fno-omit-frame-pointer"
export ASAN_OPTIONS=detect_leaks=0
CGO_CFLAGS="$asan" CGO_CXXFLAGS="$asan" CGO_LDFLAGS="-fsanitize=address" go test -count=1 -p 1 -timeout 10m \
	-run '^(TestMalgo.*|TestPulseSession.*|TestPulseDevice.*|TestPulsePlay.*)$' ./audio/
CGO_CFLAGS="$asan" CGO_CXXFLAGS="$asan" CGO_LDFLAGS="-fsanitize=address" go test -count=1 -p 1 -timeout 10m ./media/apm/
unset ASAN_OPTIONS

# In CI, each fuzz target runs briefly on top of its seed corpus; a crasher
# it finds is written under the package's testdata/fuzz and, committed,
# runs as a regression test with every `go test`.
if [[ "${CI:-}" == "true" ]]; then
	for target in ./signaling:FuzzDecode ./signaling:FuzzDecodeFast \
		./signaling/server:FuzzServerFrames ./signaling/server:FuzzToken; do
		go test -run '^$' -fuzz "^${target#*:}\$" -fuzztime 10s "${target%%:*}"
	done
fi
