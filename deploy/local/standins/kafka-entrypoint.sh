#!/bin/sh
# apache/kafka's start-up, for a single node, on tansu. The log directory
# holds tansu's SQLite store.
#
# Without SASL (no KAFKA_SASL_ENABLED_MECHANISMS): the first PLAINTEXT
# listener of KAFKA_LISTENERS / KAFKA_ADVERTISED_LISTENERS is tansu's.
#
# With SASL: Kafka serves the clients' SASL listener and a loopback PLAINTEXT
# one (where kafka-init, in this container's network, makes topics, users
# and ACLs) at once. tansu serves one listener, and with authentication on
# it refuses every request before sign-in, user creation included. So it
# runs in two phases: the loopback listener without authentication until
# kafka-init has finished (its closing `kafka-topics.sh --list` leaves a
# marker topic newer than this start), then the SASL listener with
# authentication on the same store.
set -eu
# tansu reads OTEL_EXPORTER_OTLP_ENDPOINT and refuses an empty one, which
# the services' shared environment sets.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
protocols=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP:-PLAINTEXT:PLAINTEXT}
listener_of() { # NAME LIST -> the host:port of that listener in LIST
  echo "$2" | tr ',' '\n' | sed -n "s|^$1://||p" | head -n 1
}
names() { # PROTOCOL -> the listener names mapped to it
  echo "$protocols" | tr ',' '\n' | sed -n "s|^\([A-Z_]*\):$1\$|\1|p"
}
bind_all() { case $1 in :*) echo "0.0.0.0$1" ;; *) echo "$1" ;; esac; }
data=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
mkdir -p "$data"
cd "$data"
if [ -z "${KAFKA_SASL_ENABLED_MECHANISMS:-}" ]; then
  name=$(names PLAINTEXT | head -n 1)
  listen=$(bind_all "$(listener_of "$name" "${KAFKA_LISTENERS:-PLAINTEXT://:9092}")")
  exec tansu broker --listener-url "tcp://$listen" \
    --advertised-listener-url "tcp://$(listener_of "$name" "${KAFKA_ADVERTISED_LISTENERS:-PLAINTEXT://localhost:9092}")" \
    --storage-engine sqlite://tansu.db
fi
sasl=$(names SASL_PLAINTEXT | head -n 1)
plain=$(names PLAINTEXT)
local_name=$(echo "${KAFKA_LISTENERS}" | tr ',' '\n' | grep '://127\.0\.0\.1:' |
  sed 's|://.*||' | grep -Fx "$plain" | head -n 1 || true)
[ -n "$sasl" ] && [ -n "$local_name" ] || {
  echo "kafka (tansu stand-in): SASL needs a SASL_PLAINTEXT listener and a PLAINTEXT one on 127.0.0.1" >&2
  exit 2
}
loopback=$(listener_of "$local_name" "$KAFKA_LISTENERS")
started=$(date +%s)
rm -f /tmp/standin-sasl-listener
tansu broker --listener-url "tcp://$loopback" --advertised-listener-url "tcp://$loopback" \
  --storage-engine sqlite://tansu.db &
setup=$!
echo "kafka (tansu stand-in): setup phase on $loopback until kafka-init is done"
while :; do
  newest=$(tansu topic list --broker "tcp://$loopback" 2>/dev/null |
    grep -o '"name":"__standin\.setup-done\.[0-9]*"' | grep -o '[0-9]*' | sort -n | tail -n 1 || true)
  [ -n "$newest" ] && [ "$newest" -ge "$started" ] && break
  kill -0 "$setup" 2>/dev/null || { echo "kafka (tansu stand-in): tansu exited" >&2; exit 1; }
  sleep 1
done
kill "$setup"
wait "$setup" || true
listen=$(bind_all "$(listener_of "$sasl" "$KAFKA_LISTENERS")")
advertised=$(listener_of "$sasl" "$KAFKA_ADVERTISED_LISTENERS")
echo "${listen##*:}" >/tmp/standin-sasl-listener
echo "kafka (tansu stand-in): serving $listen with SASL/SCRAM"
exec tansu broker --listener-url "tcp://$listen" --advertised-listener-url "tcp://$advertised" \
  --storage-engine sqlite://tansu.db --authentication
