# Vault policy of the users service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/users holds its database password (db_password) or URL (users_database_url),
# redis_password (the deny-list of ended sessions) and the token signing keys
# (jwt_keys, jwt_active_kid): only this service may read them.
# Its PKI policy, messenger-pki-users (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/users" {
  capabilities = ["read"]
}
