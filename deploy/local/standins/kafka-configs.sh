#!/bin/sh
# Kafka's kafka-configs.sh for what docker-compose.yml's kafka-init passes:
#   --bootstrap-server H:P --alter --entity-type users --entity-name NAME
#     --add-config 'SCRAM-SHA-512=[iterations=N,password=P]'
# carried out with `tansu user create` (tansu stores SCRAM credentials).
set -eu
[ -n "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ] || unset OTEL_EXPORTER_OTLP_ENDPOINT
server='' entity_type='' name='' config=''
while [ $# -gt 0 ]; do
  case $1 in
    --bootstrap-server) server=$2; shift 2 ;;
    --alter) shift ;;
    --entity-type) entity_type=$2; shift 2 ;;
    --entity-name) name=$2; shift 2 ;;
    --add-config) config=$2; shift 2 ;;
    *) echo "kafka-configs.sh (tansu stand-in): unsupported option $1" >&2; exit 2 ;;
  esac
done
[ "$entity_type" = users ] && [ -n "$name" ] && [ -n "$server" ] || {
  echo "kafka-configs.sh (tansu stand-in): only --alter --entity-type users" >&2
  exit 2
}
# Past the stand-in broker's setup phase (kafka-entrypoint.sh) the loopback
# listener is gone and tansu takes nothing without sign-in: a kafka-init run
# again on a set-up stack (compose up twice) finds everything made already.
past_setup() {
  ! tansu topic list --broker "tcp://$1" >/dev/null 2>&1 &&
    bash -c 'exec 3<>/dev/tcp/127.0.0.1/29092' 2>/dev/null
}
if past_setup "$server"; then
  echo "kafka-configs.sh (tansu stand-in): broker past its setup phase; user $name made then"
  exit 0
fi
case $config in
  SCRAM-SHA-512=\[*\]) mechanism=scram512 ;;
  SCRAM-SHA-256=\[*\]) mechanism=scram256 ;;
  *) echo "kafka-configs.sh (tansu stand-in): only SCRAM-SHA-512/256 credentials" >&2; exit 2 ;;
esac
settings=${config#*=[}
settings=${settings%]}
iterations=8192 password=''
for setting in $(echo "$settings" | tr ',' ' '); do
  case $setting in
    iterations=*) iterations=${setting#iterations=} ;;
    password=*) password=${setting#password=} ;;
  esac
done
[ -n "$password" ] || { echo "kafka-configs.sh (tansu stand-in): no password" >&2; exit 2; }
tansu user create --broker "tcp://$server" --mechanism "$mechanism" \
  --iterations "$iterations" "$name" "$password" >/dev/null
echo "Completed updating config for user $name."
