#!/usr/bin/env bash
# The README's main job: a real call on the embedded defaults (in-process
# signaling server, virtual audio device when there is no sound card).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
exec go run ./examples/demo "$@"
