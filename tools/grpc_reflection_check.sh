#!/usr/bin/env bash
# gRPC reflection with a real client library against the running `./dev up`
# fleet (tools/grpc_reflection_check.py):
#
#   ./dev up && tools/grpc_reflection_check.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../deploy/pinned-venv.sh
source "$ROOT/deploy/pinned-venv.sh"
VENV=$ROOT/.local/grpc-venv
ensure_pinned_venv "$VENV" grpcio==1.71.0 grpcio-reflection==1.71.0 protobuf==5.29.4
exec "$VENV/bin/python" "$ROOT/tools/grpc_reflection_check.py" "$@"
