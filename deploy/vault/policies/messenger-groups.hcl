# Vault policy of the groups service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/groups holds its database password or URL (groups_database_url) and
# redis_password (the Authorize cache).
# Its PKI policy, messenger-pki-groups (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/groups" {
  capabilities = ["read"]
}
