#!/bin/sh
# The one MinIO client command docker-compose.yml's health check uses:
# `mc ready ALIAS` succeeds when the S3 port answers HTTP.
set -eu
if [ "${1:-}" != ready ]; then
  echo "this MinIO client stand-in knows only: mc ready local" >&2
  exit 2
fi
curl -s -o /dev/null --max-time 4 http://127.0.0.1:9000/
