#!/bin/sh
# Kafka's kafka-acls.sh (--add ...): tansu has no authorizer, so the ACL is
# checked for the options kafka-init passes and reported, not enforced. The
# ACLs are checked offline instead (crates/fleet/tests/api/kafka_acls.rs,
# deploy/validate.sh) and enforced by a real Kafka (docker-compose.yml's
# StandardAuthorizer, Strimzi's KafkaUsers).
set -eu
add='' principal='' resource=''
while [ $# -gt 0 ]; do
  case $1 in
    --bootstrap-server | --resource-pattern-type | --operation) shift 2 ;;
    --add) add=1; shift ;;
    --allow-principal) principal=$2; shift 2 ;;
    --topic | --group) resource="${1#--} $2"; shift 2 ;;
    *) echo "kafka-acls.sh (tansu stand-in): unsupported option $1" >&2; exit 2 ;;
  esac
done
[ -n "$add" ] && [ -n "$principal" ] && [ -n "$resource" ] || {
  echo "kafka-acls.sh (tansu stand-in): give --add --allow-principal and --topic or --group" >&2
  exit 2
}
echo "kafka-acls.sh (tansu stand-in): $principal on $resource accepted, not enforced (no authorizer)"
