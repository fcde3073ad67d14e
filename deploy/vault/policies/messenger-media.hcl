# Vault policy of the media service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/media holds its database password or URL (media_database_url)
# and redis_password (the deny-list of ended sessions, checked with each user token).
# Its PKI policy, messenger-pki-media (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/media" {
  capabilities = ["read"]
}
