#!/bin/sh
# vault-init of docker-compose.yml: the development stack's secrets, one per
# service holding only what it needs, the shipped policies, and a token and
# AppRole per service (the prod overlay logs in with the AppRoles). Every
# step may run again (compose runs it on every `up`, and retries it).
# Development values only; production writes real secrets out of band
# (docs/deployment.md).
set -eu
# One secret per service, holding only what it needs.
# Each service connects as its own Postgres role (postgres-roles).
url() { echo "postgres://messenger_$1:dev-$1-db-password@postgres:5432/messenger"; }
# ...and signs in to Kafka as its own user (kafka-init creates them).
kafka() { echo "kafka_username=messenger-$1 kafka_password=dev-$1-kafka-password"; }
# ...and to Redis as its own ACL user (deploy/redis/users.dev.acl).
redis() { echo "redis_username=messenger-$1 redis_password=dev-$1-redis-password"; }
# kafka and redis print two words each, split on purpose.
# shellcheck disable=SC2046
bao kv put -mount=secret messenger/users $(kafka users) $(redis users) \
  users_database_url="$(url users)" \
  jwt_keys="dev:$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
  jwt_active_kid=dev
for svc in groups messages media; do
  # shellcheck disable=SC2046
  bao kv put -mount=secret "messenger/$svc" $(kafka "$svc") $(redis "$svc") \
    "${svc}_database_url=$(url "$svc")"
done
# shellcheck disable=SC2046
bao kv put -mount=secret messenger/gateway $(kafka gateway) $(redis gateway)
sh /usr/local/bin/fleet-pki.sh
# The notifier's VAPID key (Web Push): made once, then kept, since browsers
# tie their subscriptions to it. A P-256 private key as PKCS#8 DER in
# base64; no openssl in this image, so the fleet CA's notifier role makes
# the key pair (the certificate issued with it is discarded, never stored).
vapid_key=$(bao kv get -mount=secret -field=vapid_key messenger/notifier 2>/dev/null || true)
if [ -z "$vapid_key" ]; then
  vapid_key=$(bao write -field=private_key "${PKI_MOUNT:-pki}/issue/notifier" \
    common_name="notifier.${MTLS_DOMAIN:-messenger.internal}" ttl=60s \
    format=der private_key_format=pkcs8)
fi
# shellcheck disable=SC2046
bao kv put -mount=secret messenger/notifier $(kafka notifier) $(redis notifier) \
  notifier_database_url="$(url notifier)" vapid_key="$vapid_key"
bao auth list | grep -q '^approle/' || bao auth enable approle
for svc in users groups messages media notifier gateway; do
  # The shipped policy: its own secret, nothing else.
  bao policy write "messenger-$svc" "/policies/messenger-$svc.hcl"
  # A token for this dev stack (fixed id, renewable forever)...
  bao token lookup "dev-token-$svc" >/dev/null 2>&1 ||
    bao token create -id="dev-token-$svc" -orphan -period=24h \
      -policy="messenger-$svc" -policy="messenger-pki-$svc" >/dev/null
  # ...and the AppRole the prod overlay logs in with.
  bao write "auth/approle/role/messenger-$svc" \
    token_policies="messenger-$svc,messenger-pki-$svc" token_ttl=1h token_max_ttl=24h
done
echo "secrets written to secret/messenger/<service>, one token and AppRole per service"
