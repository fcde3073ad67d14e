#!/bin/sh
# Prints the Redis ACL file of the fleet: one user per service, allowed only
# its own keys and channels (docs/security.md), passwords stored as SHA-256.
#
#   USERS_REDIS_PASSWORD=... GROUPS_REDIS_PASSWORD=... MESSAGES_REDIS_PASSWORD=... \
#   MEDIA_REDIS_PASSWORD=... NOTIFIER_REDIS_PASSWORD=... GATEWAY_REDIS_PASSWORD=... \
#   sh deploy/redis/acl.sh >users.acl
#   redis-server --aclfile users.acl --protected-mode no
#
# Each service's Vault secret holds redis_username=messenger-<service> and
# its redis_password. Only the users service may write the deny-list of
# ended sessions (deny:*); the others read it. The unauthenticated default
# user may only PING (health probes); since it has no password, Redis's
# protected mode would refuse every client from another host: turn it off. No service may run @dangerous or
# @admin commands (KEYS, FLUSHALL, CONFIG, ...). docker-compose.yml serves
# users.dev.acl, this script's output for its development passwords.
set -eu
hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
password() { # VARIABLE -> its SHA-256, or stop
  eval "value=\${$1:-}"
  [ -n "$value" ] || { echo "acl.sh: set $1" >&2; exit 2; }
  hash "$value"
}
common='+@all -@dangerous -@admin'
echo "user default on nopass resetkeys resetchannels -@all +ping"
echo "user messenger-users on #$(password USERS_REDIS_PASSWORD) resetkeys ~deny:* resetchannels &sessions:revoked $common"
echo "user messenger-groups on #$(password GROUPS_REDIS_PASSWORD) resetkeys ~groups:* %R~deny:* resetchannels &groups:changed &sessions:revoked $common"
echo "user messenger-messages on #$(password MESSAGES_REDIS_PASSWORD) resetkeys %R~deny:* resetchannels &sessions:revoked $common"
echo "user messenger-media on #$(password MEDIA_REDIS_PASSWORD) resetkeys %R~deny:* resetchannels &sessions:revoked $common"
echo "user messenger-notifier on #$(password NOTIFIER_REDIS_PASSWORD) resetkeys %R~deny:* resetchannels &sessions:revoked $common"
echo "user messenger-gateway on #$(password GATEWAY_REDIS_PASSWORD) resetkeys ~rl:* ~rt:* %R~deny:* resetchannels &rt:room:* &groups:changed &sessions:revoked $common"
