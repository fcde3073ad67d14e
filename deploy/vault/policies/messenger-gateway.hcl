# Vault policy of the gateway service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/gateway holds redis_password only: no
# token signing key (the users service signs; the gateway verifies with the
# public keys) and no database credential.
# Its PKI policy, messenger-pki-gateway (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/gateway" {
  capabilities = ["read"]
}
