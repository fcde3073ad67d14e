#!/bin/sh
# The fleet's internal certificate authority in Vault/OpenBao, for the
# services' mutual TLS (docs/security.md). Idempotent: run it on every start
# of a dev-mode server, once on a real one.
#
# Needs BAO_ADDR (or VAULT_ADDR) and BAO_TOKEN (or VAULT_TOKEN) of a token
# that may mount and configure secrets engines and write policies.
#
# Makes: the PKI engine at $PKI_MOUNT (default pki) with a self-signed EC
# root; one role per identity (users, groups, messages, media, notifier,
# gateway, operator) that issues only `<identity>.$MTLS_DOMAIN`, server and client
# use, at most 72 h; and one policy per identity, messenger-pki-<identity>,
# allowing exactly that role's issue endpoint. Give each service's Vault
# identity (AppRole or Kubernetes role) its own policy and no other, and a
# compromised service can issue certificates for itself only.
set -eu
mount="${PKI_MOUNT:-pki}"
domain="${MTLS_DOMAIN:-messenger.internal}"
bao_cli="${BAO_CLI:-bao}"

if ! "$bao_cli" secrets list -format=json | grep -q "\"$mount/\""; then
  "$bao_cli" secrets enable -path="$mount" -max-lease-ttl=87600h pki >/dev/null
fi
if ! "$bao_cli" read -field=certificate "$mount/cert/ca" 2>/dev/null | grep -q "BEGIN CERTIFICATE"; then
  "$bao_cli" write -field=certificate "$mount/root/generate/internal" \
    common_name="messenger internal CA" ttl=87600h key_type=ec key_bits=256 >/dev/null
fi
for identity in users groups messages media notifier gateway operator; do
  "$bao_cli" write "$mount/roles/$identity" \
    allowed_domains="$identity.$domain" allow_bare_domains=true allow_subdomains=false \
    allow_localhost=false allow_ip_sans=false enforce_hostnames=true \
    server_flag=true client_flag=true key_type=ec key_bits=256 \
    max_ttl=72h no_store=true >/dev/null
  printf 'path "%s/issue/%s" { capabilities = ["update"] }\n' "$mount" "$identity" |
    "$bao_cli" policy write "messenger-pki-$identity" - >/dev/null
done
echo "fleet CA at $mount/ (roles and policies messenger-pki-<identity> for *.$domain)"
