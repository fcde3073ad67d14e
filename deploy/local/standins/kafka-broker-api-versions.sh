#!/bin/sh
# Kafka's broker probe (`--bootstrap-server H:P`): succeeds when the broker
# answers a metadata request (or, once it requires SASL, takes a connection).
set -eu
# tansu reads OTEL_EXPORTER_OTLP_ENDPOINT and refuses an empty one, which
# the services' shared environment sets.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
[ "${1:-}" = --bootstrap-server ] && [ -n "${2:-}" ] || {
  echo "usage: kafka-broker-api-versions.sh --bootstrap-server HOST:PORT" >&2
  exit 2
}
# After the setup phase (kafka-entrypoint.sh) only the SASL listener is
# served, and tansu answers nothing before sign-in: a connection is the probe.
if [ -f /tmp/standin-sasl-listener ]; then
  exec bash -c "exec 3<>/dev/tcp/127.0.0.1/$(cat /tmp/standin-sasl-listener)"
fi
tansu topic list --broker "tcp://$2" >/dev/null
