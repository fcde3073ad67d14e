# Vault policy of the messages service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/messages holds its database password or URL (messages_database_url)
# and redis_password (the deny-list of ended sessions, checked with each user token).
# Its PKI policy, messenger-pki-messages (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/messages" {
  capabilities = ["read"]
}
