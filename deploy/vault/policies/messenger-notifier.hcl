# Vault policy of the notifier service: its own KV secret and nothing else
# (docs/security.md). secret/messenger/notifier holds its database password or URL (notifier_database_url),
# redis_password (the deny-list of ended sessions, checked with each user token)
# and vapid_key (the Web Push key pair push services know the fleet by).
# Its PKI policy, messenger-pki-notifier (deploy/vault/fleet-pki.sh), lets it
# issue its own certificate.
path "secret/data/messenger/notifier" {
  capabilities = ["read"]
}
