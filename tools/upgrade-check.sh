#!/usr/bin/env bash
# Release-time upgrade check (docs/deployment.md, "Upgrades"): the previous
# release's binaries must keep serving on the newest schema, because during
# a rolling deploy the migrations run first and old replicas serve on.
#
#   tools/upgrade-check.sh REF      e.g. tools/upgrade-check.sh v0.1.0
#
# 1. builds the fleet binary (`messenger`, every service in one process) at
#    REF in a git worktree under .local/upgrade-check/ with a target
#    directory of its own (the first build takes as long as a cold build;
#    sharing this checkout's would mix the two trees' generated code);
# 2. makes a new database and migrates it with THIS tree's migrations;
# 3. starts REF's binary on it without migrating (DB_RUN_MIGRATIONS=false),
#    on ports of its own, against ./dev infra's Postgres, Redis and broker;
# 4. runs the API checks the compose test runs (deploy/local/stack_checks.py:
#    register, group, send, WebSocket delivery with wscat, upload with
#    thumbnail) against it;
# 5. stops it, drops the database, removes the worktree.
# Exits non-zero if any step fails. Needs ./dev infra (it starts it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REF=${1:?usage: tools/upgrade-check.sh REF (the previous release, e.g. v0.1.0)}
STATE=$ROOT/.local/upgrade-check
WORKTREE=$STATE/tree
TARGET=$STATE/target
LOG=$STATE/fleet.log
PORT=18080
DB=upgrade_check_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
ok() { printf '    \033[32mok\033[0m %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

mkdir -p "$STATE"
fleet_pid=
cleanup() {
  [[ -n $fleet_pid ]] && kill "$fleet_pid" 2>/dev/null && wait "$fleet_pid" 2>/dev/null
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" 2>/dev/null || true
  git -C "$ROOT" worktree remove --force "$WORKTREE" 2>/dev/null || true
  git -C "$ROOT" worktree prune
  rm -rf "${STATE:?}/media"
}
trap cleanup EXIT

step "infrastructure (./dev infra)"
"$ROOT/dev" infra >"$STATE/infra.log" 2>&1 || die "./dev infra failed (see $STATE/infra.log)"

step "building $REF's fleet binary (worktree $WORKTREE, target $TARGET)"
git -C "$ROOT" worktree remove --force "$WORKTREE" 2>/dev/null || true
git -C "$ROOT" worktree add --detach "$WORKTREE" "$REF" >/dev/null
(cd "$WORKTREE" && CARGO_TARGET_DIR=$TARGET cargo build --bin messenger) ||
  die "cannot build $REF"
OLD=$STATE/messenger-previous
cp "$TARGET/debug/messenger" "$OLD"
ok "$REF built"

step "this tree's fleet binary, for its migrations"
cargo build --bin messenger
NEW=$ROOT/target/debug/messenger

# What both binaries run with: the local broker, a database and topic
# prefix of their own, plaintext internal gRPC on ports of their own (no
# Vault), a throwaway signing key.
while IFS='=' read -r name value; do
  [[ -z $name || $name == \#* ]] && continue
  [[ -n ${!name+x} ]] || export "$name=$value"
done <"$ROOT/config/local-broker.env"
export DB_NAME=$DB KAFKA_TOPIC_PREFIX="$DB." GRPC_MTLS_ENABLED=false
export SERVER_PORT=$PORT SERVER_INTERNAL_LISTEN=""
JWT_KEYS="upgrade:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export JWT_KEYS JWT_ACTIVE_KID=upgrade
export MEDIA_STORAGE_URL="file://$STATE/media"
for pair in users:18051 groups:18052 messages:18053 media:18054 notifier:18055; do
  svc=${pair%%:*} port=${pair##*:}
  export "${svc^^}_GRPC_LISTEN=127.0.0.1:$port" "${svc^^}_GRPC_URL=http://127.0.0.1:$port"
done
unset VAULT_ADDR VAULT_TOKEN

step "database $DB, migrated with this tree's migrations"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$DB\""
"$NEW" migrate >"$STATE/migrate.log" 2>&1 || die "migrating failed (see $STATE/migrate.log)"
ok "newest schema in place"

step "$REF's binary on the newest schema (log: $LOG)"
DB_RUN_MIGRATIONS=false "$OLD" >"$LOG" 2>&1 &
fleet_pid=$!
for ((i = 0; i < 600; i++)); do
  curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null 2>&1 && break
  kill -0 "$fleet_pid" 2>/dev/null || die "$REF's binary exited: $(tail -n 5 "$LOG")"
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/api/v1/health" >/dev/null || die "$REF's gateway did not answer"
ok "serving on http://127.0.0.1:$PORT"

step "the API checks (deploy/local/stack_checks.py)"
# shellcheck source=deploy/pinned-venv.sh
source "$ROOT/deploy/pinned-venv.sh"
VENV=$STATE/venv
PINNED_VENV_IMPORTS=websockets ensure_pinned_venv "$VENV" websockets==15.0.1
WSCAT=$ROOT/.local/npm/node_modules/.bin/wscat
[[ -x $WSCAT ]] || npm install --silent --prefix "$ROOT/.local/npm" wscat@6.1.0 >/dev/null
"$VENV/bin/python" "$ROOT/deploy/local/stack_checks.py" --base "http://127.0.0.1:$PORT" \
  --wscat "$WSCAT" --replicas 1 || die "$REF's binaries fail the API checks on the newest schema"
ok "$REF serves the API on the newest schema: the upgrade keeps old replicas working"
