#!/bin/sh
# Kafka's kafka-topics.sh for the options docker-compose.yml passes:
#   --bootstrap-server H:P --create [--if-not-exists] --topic T
#     --partitions N --replication-factor R [--config K=V]...
#   --bootstrap-server H:P --list
# (kafka-init's closing --list also leaves the marker topic that ends the
# stand-in broker's setup phase: kafka-entrypoint.sh; marker topics are
# never listed)
# carried out with tansu's admin commands. The replication factor is
# accepted and ignored: tansu keeps one copy in its store.
set -eu
# tansu reads OTEL_EXPORTER_OTLP_ENDPOINT and refuses an empty one, which
# the services' shared environment sets.
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
server=localhost:9092 action='' topic='' partitions=1 if_not_exists='' configs=''
while [ $# -gt 0 ]; do
  case $1 in
    --bootstrap-server) server=$2; shift 2 ;;
    --create) action=create; shift ;;
    --list) action=list; shift ;;
    --if-not-exists) if_not_exists=1; shift ;;
    --topic) topic=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --replication-factor) shift 2 ;;
    --config) configs="$configs --config $2"; shift 2 ;;
    *) echo "kafka-topics.sh (tansu stand-in): unsupported option $1" >&2; exit 2 ;;
  esac
done
# Past the stand-in broker's setup phase (kafka-entrypoint.sh) the loopback
# listener is gone and tansu takes nothing without sign-in: a kafka-init run
# again on a set-up stack (compose up twice) finds everything made already.
past_setup() {
  ! tansu topic list --broker "tcp://$1" >/dev/null 2>&1 &&
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/29092' 2>/dev/null
}
if past_setup "$server"; then
  echo "kafka-topics.sh (tansu stand-in): broker past its setup phase, nothing to do"
  exit 0
fi
broker="tcp://$server"
names() { tansu topic list --broker "$broker" | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | grep -v '^__standin\.' || true; }
case $action in
  list)
    names
    tansu topic create "__standin.setup-done.$(date +%s)" --broker "$broker" --partitions 1 >/dev/null
    ;;
  create)
    [ -n "$topic" ] || { echo "--create needs --topic" >&2; exit 2; }
    if [ -n "$if_not_exists" ] && names | grep -qx "$topic"; then exit 0; fi
    # shellcheck disable=SC2086 # $configs is a list of options
    tansu topic create "$topic" --broker "$broker" --partitions "$partitions" $configs
    echo "Created topic $topic."
    ;;
  *) echo "kafka-topics.sh (tansu stand-in): give --create or --list" >&2; exit 2 ;;
esac
