#!/bin/sh
# Kafka's broker probe (`--bootstrap-server H:P`): succeeds when the broker
# answers a metadata request.
set -eu
# tansu reads OTEL_EXPORTER_OTLP_ENDPOINT and refuses an empty one, which
# the services' shared environment sets.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
[ "${1:-}" = --bootstrap-server ] && [ -n "${2:-}" ] || {
  echo "usage: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT" >&2
  exit 2
}
tansu topic list --broker "tcp://$2" >/dev/null
