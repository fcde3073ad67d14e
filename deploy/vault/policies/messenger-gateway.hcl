# Vault policy of the gateway service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/gateway holds the JWT signing keys (jwt_keys, jwt_active_kid) and
# redis_password; no database credential.
# Its PKI policy, messenger-pki-gateway (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/gateway" {
  capabilities = ["read"]
}
