#!/bin/sh
# apache/kafka's start-up, for a single node: the first PLAINTEXT listener
# of KAFKA_LISTENERS and KAFKA_ADVERTISED_LISTENERS becomes tansu's listener
# and advertised address; the log directory holds tansu's SQLite store.
set -eu
# tansu reads OTEL_EXPORTER_OTLP_ENDPOINT and refuses an empty one, which
# the services' shared environment sets.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
plaintext() { # the host:port of the PLAINTEXT entry of a listener list
  echo "$1" | tr ',' '\n' | sed -n 's|^PLAINTEXT://||p' | head -n 1
}
listen=$(plaintext "${KAFKA_LISTENERS:-PLAINTEXT://:9092}")
advertised=$(plaintext "${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}")
case $listen in :*) listen="0.0.0.0$listen" ;; esac
data=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
mkdir -p "$data"
cd "$data"
exec tansu broker \
  --listener-url "tcp://$listen" \
  --advertised-listener-url "tcp://$advertised" \
  --storage-engine sqlite://tansu.db
