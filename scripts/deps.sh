#!/usr/bin/env bash
# Installs the system packages dialtone needs to build and test on Debian/Ubuntu.
# Idempotent: installs only what is missing. The cgo build links libopus
# (the codec) and WebRTC's audio processing 0.3 (echo cancellation, noise
# suppression, gain control); the echo harness's tests also link speexdsp,
# the canceller it is compared with.
#
# With DIALTONE_FULL=1 or CI=true it also installs the programs the
# integration tests run, the settings under which those tests fail without
# them (internal/testenv):
#   redis-server               the Redis broker's tests
#   chromium, firefox-esr      the web phone's browser tests, in a
#   iproute2, util-linux       loopback-only network namespace (unshare, ip)
#   pulseaudio(-utils)         a private sound server with null sinks
#                              (internal/pulsetest; Firefox needs an output)
#   coturn                     relay-only calls through a real TURN server
#   janus                      the AudioBridge tests (in a network namespace)
#   espeak-ng, sox             speech for the quality tests
#   node, npm (if missing)     a WHATWG WebSocket client in the server's
#                              UTF-8 test (Node >= 20.10); the Socket.IO
#                              server signaling/socketio's tests run
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in gcc g++ pkg-config libopus-dev libopusfile-dev libwebrtc-audio-processing-dev libspeexdsp-dev; do
	have_pkg "$p" || need+=("$p")
done
if [[ "${CI:-}" == "true" || "${DIALTONE_FULL:-}" == "1" ]]; then
	for p in redis-server chromium firefox-esr iproute2 util-linux pulseaudio pulseaudio-utils coturn janus espeak-ng sox; do
		have_pkg "$p" || need+=("$p")
	done
	command -v node >/dev/null 2>&1 || need+=(nodejs)
	command -v npm >/dev/null 2>&1 || need+=(npm)
fi
if ! command -v go >/dev/null 2>&1; then
	need+=(golang-go)
fi

if ((${#need[@]})); then
	echo "deps: installing ${need[*]}" >&2
	sudo=""
	if [[ $(id -u) != 0 ]]; then sudo="sudo"; fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The module needs Go 1.26; any go ≥ 1.21 fetches that toolchain by itself
# (GOTOOLCHAIN=auto, through the module proxy). Older distribution Go
# packages (Debian 12 ships 1.19) cannot.
if ! go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p') || [[ -z "$go_minor" || "$go_minor" -lt 21 ]]; then
	echo "deps: Go >= 1.21 is needed (found: $(go version 2>/dev/null || echo none)); install it from https://go.dev/dl/" >&2
	exit 1
fi
