#!/usr/bin/env bash
# Broker restart against the running `./dev up` fleet (tools/broker_restart_check.py):
# kills the local broker mid-flow and checks live delivery resumes by itself.
#
#   ./dev up && tools/broker_restart_check.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../deploy/pinned-venv.sh
source "$ROOT/deploy/pinned-venv.sh"
VENV=$ROOT/.local/check-venv
ensure_pinned_venv "$VENV" websockets==15.0.1
exec "$VENV/bin/python" "$ROOT/tools/broker_restart_check.py" "$@"
