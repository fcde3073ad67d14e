#!/bin/sh
# `minio server DIR` as MinIO's image runs it, served by s3s-fs on :9000
# with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD as its one access key.
set -eu
if [ "${1:-}" != server ] || [ -z "${2:-}" ]; then
  echo "this MinIO stand-in runs only: minio server DIR" >&2
  exit 2
fi
: "${MINIO_ROOT_USER:?set MINIO_ROOT_USER}" "${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD}"
mkdir -p "$2"
exec s3s-fs --host 0.0.0.0 --port 9000 \
  --access-key "$MINIO_ROOT_USER" --secret-key "$MINIO_ROOT_PASSWORD" "$2"
