#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests for every operation of the
# gateway's OpenAPI document (/api/v1/openapi.json), valid and invalid, as a
# signed-in user, and checks every answer: no 5xx, and status code,
# content type, headers and body as the document says.
#
#   deploy/fuzz-api.sh           short run (CI; a few examples per operation)
#   deploy/fuzz-api.sh --full    many examples per operation, plus stateful
#                                sequences (create, then use what was created)
#
# Without BASE_URL it starts a private fleet (target/debug/messenger, built if
# needed) on free loopback ports with a fresh database fuzz_<random>, its own
# Kafka topic prefix and JWT key, and removes all of it on exit. Needs
# PostgreSQL on 127.0.0.1:5432 (trust) and Redis on 6379 (`./dev infra`);
# Kafka on 9092 is used when it runs. The first run installs schemathesis
# (pinned) into .local/fuzz-venv.
#
# Environment: BASE_URL (fuzz a running gateway, e.g. http://127.0.0.1:8080,
# instead of starting one), FUZZ_MAX_EXAMPLES (examples per operation and
# phase; default 6, --full 300), FUZZ_CHECKS (schemathesis checks; default
# the five above; `all` adds the stricter ones), FUZZ_SEED (default 1 in
# the short run so CI is repeatable, random with --full), FUZZ_WORKERS
# (default 2), FUZZ_VENV. With BASE_URL the fuzzer's access token lives as
# long as that gateway's JWT_ACCESS_TTL_SECONDS (15 min by default).
# Failures are printed with a curl line that reproduces each; the JUnit
# report goes to .local/fuzz-api/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${FUZZ_VENV:-$ROOT/.local/fuzz-venv}
WORK=$ROOT/.local/fuzz-api
PINS=(schemathesis==4.32.5)
CHECKS=${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}

full=false
for arg in "$@"; do
  case $arg in
    --full) full=true ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: deploy/fuzz-api.sh [--full]" >&2; exit 2 ;;
  esac
done
if $full; then
  MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-300}
  PHASES=examples,coverage,fuzzing,stateful
  SEED=${FUZZ_SEED:-}
else
  MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-6}
  PHASES=examples,coverage,fuzzing
  SEED=${FUZZ_SEED:-1}
fi
WORKERS=${FUZZ_WORKERS:-2}

started=$(date +%s)
step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ tools
# shellcheck source=deploy/pinned-venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned-venv.sh"
ensure_pinned_venv "$VENV" "${PINS[@]}"
rm -rf "$WORK"
mkdir -p "$WORK"

# ------------------------------------------------------------------ fleet
fleet_pid=""
database=""
cleanup() {
  local status=$?
  if [[ -n $fleet_pid ]] && kill -0 "$fleet_pid" 2>/dev/null; then
    kill -TERM "$fleet_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$fleet_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$fleet_pid" 2>/dev/null || true
    wait "$fleet_pid" 2>/dev/null || true
  fi
  if [[ -n $database ]]; then
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK/media"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -n ${BASE_URL:-} ]]; then
  BASE=${BASE_URL%/}
  step "using the gateway at $BASE"
else
  step "private fleet"
  listening 5432 || die "PostgreSQL is not running on 127.0.0.1:5432 (./dev infra)"
  listening 6379 || die "Redis is not running on 127.0.0.1:6379 (./dev infra)"
  info "building (cargo build --bin messenger)"
  (cd "$ROOT" && cargo build --quiet --bin messenger)
  suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  database=fuzz_$suffix
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $database"
  # Six free loopback ports: the gateway and five gRPC services.
  read -r http users groups messages media notifier < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
  kafka=false
  if listening 9092; then kafka=true; fi
  mkdir -p "$WORK/media" "$ROOT/.local/logs"
  log=$ROOT/.local/logs/fuzz-api.log
  : >"$log"
  # The local broker's client settings (config/local-broker.env), unless
  # the environment sets them.
  while IFS='=' read -r name value; do
    [[ -z $name || $name == \#* ]] && continue
    [[ -n ${!name+x} ]] || export "$name=$value"
  done <"$ROOT/config/local-broker.env"
  # Generous allowances: the limiter runs (its headers are checked against
  # the document) without turning most of the run into 429s.
  # The fuzzer aims at the public API: no Vault, so the fleet's internal
  # gRPC runs without mTLS here (tests/api/insiders.rs covers that door).
  env -u VAULT_ADDR -u CONFIG_FILE GRPC_MTLS_ENABLED=false \
    SERVER_HOST=127.0.0.1 SERVER_PORT="$http" SERVER_INTERNAL_LISTEN= DB_NAME="$database" \
    USERS_GRPC_LISTEN="127.0.0.1:$users" USERS_GRPC_URL="http://127.0.0.1:$users" \
    GROUPS_GRPC_LISTEN="127.0.0.1:$groups" GROUPS_GRPC_URL="http://127.0.0.1:$groups" \
    MESSAGES_GRPC_LISTEN="127.0.0.1:$messages" MESSAGES_GRPC_URL="http://127.0.0.1:$messages" \
    MEDIA_GRPC_LISTEN="127.0.0.1:$media" MEDIA_GRPC_URL="http://127.0.0.1:$media" \
    NOTIFIER_GRPC_LISTEN="127.0.0.1:$notifier" NOTIFIER_GRPC_URL="http://127.0.0.1:$notifier" \
    KAFKA_ENABLED="$kafka" KAFKA_TOPIC_PREFIX="fuzz$suffix." \
    JWT_KEYS="fuzz:$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" JWT_ACTIVE_KID=fuzz \
    JWT_ACCESS_TTL_SECONDS=86400 \
    MEDIA_STORAGE_URL="file://$WORK/media" \
    RATE_LIMIT_ENABLED=true RATE_LIMIT_AUTH_PER_MINUTE=1000000 \
    RATE_LIMIT_LOGIN_PER_ACCOUNT_PER_MINUTE=1000000 RATE_LIMIT_SEND_PER_MINUTE=1000000 \
    RATE_LIMIT_UPLOAD_PER_MINUTE=1000000 RATE_LIMIT_SEARCH_PER_MINUTE=1000000 \
    RATE_LIMIT_DEFAULT_PER_MINUTE=1000000 \
    RUST_LOG=warn \
    "$ROOT/target/debug/messenger" >>"$log" 2>&1 &
  fleet_pid=$!
  BASE=http://127.0.0.1:$http
  info "database $database, gateway $BASE, Kafka $([[ $kafka == true ]] && echo on || echo off), log ${log#"$ROOT"/}"
  for ((i = 0; i < 600; i++)); do
    curl -fsS "$BASE/api/v1/health" >/dev/null 2>&1 && break
    kill -0 "$fleet_pid" 2>/dev/null || die "the fleet exited; last log lines:
$(tail -20 "$log")"
    sleep 0.1
  done
  curl -fsS "$BASE/api/v1/health" >/dev/null 2>&1 || die "the gateway did not answer within 60 s"
  info "gateway up after $(($(date +%s) - started)) s"
fi

# ------------------------------------------------------------------ fixtures
# A signed-in user with real resources, so path and body ids sometimes name
# something that exists: a group it owns and one it was invited to (in case
# the fuzzer deletes the first), channels, messages, a reaction, a file and
# a direct conversation.
step "fixtures (users, groups, channels, messages, a file)"
"$VENV/bin/python" - "$BASE" "$WORK" <<'PY'
import json, secrets, struct, sys, urllib.error, urllib.request, zlib
from pathlib import Path

base, work = sys.argv[1], Path(sys.argv[2])


def call(method, path, body=None, token=None, raw=None, content_type="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", content_type)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
    except urllib.error.HTTPError as err:
        sys.exit(f"fixture {method} {path}: {err.code} {err.read()[:300]!r}")
    return json.loads(text) if text else None


def register(name):
    tag = secrets.token_hex(4)
    body = {"username": f"{name}_{tag}", "email": f"{name}_{tag}@example.com",
            "display_name": name.title(), "password": "correct horse battery"}
    answer = call("POST", "/api/v1/auth/register", body)
    return answer["user"]["id"], answer["access_token"]


me, token = register("fuzzer")
peer, peer_token = register("peer")
owned = call("POST", "/api/v1/groups", {"name": "fuzz owned", "visibility": "public"}, token)
invited = call("POST", "/api/v1/groups", {"name": "fuzz invited", "visibility": "private"}, peer_token)
call("POST", f"/api/v1/groups/{invited['id']}/members", {"user_id": me}, peer_token)
call("POST", f"/api/v1/groups/{owned['id']}/members", {"user_id": peer}, token)
channels = call("GET", f"/api/v1/groups/{owned['id']}/channels", token=token)["channels"]
extra = call("POST", f"/api/v1/groups/{owned['id']}/channels", {"name": "fuzz"}, token)
peer_channel = call("GET", f"/api/v1/groups/{invited['id']}/channels", token=token)["channels"][0]
message = call("POST", f"/api/v1/channels/{channels[0]['id']}/messages", {"content": "hello @peer"}, token)
reply = call("POST", f"/api/v1/channels/{channels[0]['id']}/messages",
             {"content": "a reply", "reply_to": message["id"]}, peer_token)
peer_message = call("POST", f"/api/v1/channels/{peer_channel['id']}/messages", {"content": "hi"}, peer_token)
call("POST", f"/api/v1/messages/{message['id']}/reactions", {"emoji": "👍"}, token)
dm = call("POST", "/api/v1/dm", {"user_id": peer}, token)


def png(body):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)  # 1x1 pixel, RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


# One transparent pixel, and an image whose processing fails (a PNG
# signature over pixels that do not decode).
pixel = call("POST", "/api/v1/media?filename=pixel.png", token=token,
             raw=png(zlib.compress(b"\0\0\0\0\0")), content_type="image/png")
broken = call("POST", "/api/v1/media?filename=broken.png", token=token,
              raw=png(b"not zlib"), content_type="image/png")
ids = {
    "users": [me, peer],
    "groups": [owned["id"], invited["id"], dm["group"]["id"]],
    "channels": [c["id"] for c in channels] + [extra["id"], peer_channel["id"], dm["channel"]["id"]],
    "messages": [message["id"], reply["id"], peer_message["id"]],
    "media": [pixel["id"], broken["id"]],
}
(work / "token").write_text(token)
(work / "ids.json").write_text(json.dumps(ids))
print(f"    user {me}; " + ", ".join(f"{len(v)} {k}" for k, v in ids.items()))
PY
TOKEN=$(cat "$WORK/token")

# Ids of real resources of the right kind are offered, half of the time,
# wherever the document has an id (path, query or body); the rest of the
# time the fuzzer makes up its own.
"$VENV/bin/python" - "$WORK" <<'PY'
import json, sys
from pathlib import Path

work = Path(sys.argv[1])
ids = json.loads((work / "ids.json").read_text())
lines = []
for kind, values in ids.items():
    lines += [f"[dictionaries.{kind}]", f"values = {json.dumps(values)}", ""]


def bind(mapping):
    return ", ".join(f'"{key}" = {{ dictionary = "{kind}", probability = 0.5 }}' for key, kind in mapping.items())


everywhere = {"query.channel_id": "channels", "query.group_id": "groups", "query.before": "messages",
              "query.after": "messages", "query.around": "messages", "body.user_id": "users",
              "body.user_ids[*]": "users", "body.group_id": "groups", "body.channel_id": "channels",
              "body.message_id": "messages", "body.reply_to": "messages", "body.attachments[*]": "media",
              "body.avatar_media_id": "media"}
# Text that reached the database unchecked once (NUL is refused by
# Postgres outright), offered now and then wherever free text goes.
nasty = ["\u0000", "a\u0000b", "\u001b[0m", "\u007f", "\u2028", " ", "../../etc/passwd", "%00", "'; --", "\\"]
lines += ["[dictionaries.nasty]", f"values = {json.dumps(nasty)}", ""]
for key in ("query.q", "query.cursor", "query.channel_ids", "query.filename", "body.login", "body.password",
            "body.refresh_token", "body.username", "body.email", "body.display_name", "body.bio", "body.name",
            "body.description", "body.topic", "body.reason", "body.content", "body.emoji", "body.client_id",
            "body.role", "body.visibility", "body.message_type", "body.muted_until", "path.emoji"):
    everywhere[key] = "nasty"


def bind_one(key, kind):
    probability = 0.2 if kind == "nasty" else 0.5
    return f'"{key}" = {{ dictionary = "{kind}", probability = {probability} }}'


lines += ["[parameters]"] + [bind_one(key, kind) for key, kind in everywhere.items()] + [""]
# Path ids by the route they are in.
for regex, mapping in [
    ("^/api/v1/groups/", {"path.id": "groups", "path.user_id": "users"}),
    ("^/api/v1/channels/", {"path.id": "channels", "path.user_id": "users"}),
    ("^/api/v1/messages/group/", {"path.group_id": "groups"}),
    ("^/api/v1/messages/[{]", {"path.id": "messages"}),
    ("^/api/v1/media/", {"path.id": "media"}),
    ("^/api/v1/users/[{]", {"path.id": "users"}),
]:
    lines += ["[[operations]]", f"include-path-regex = {json.dumps(regex)}",
              f"parameters = {{ {bind(mapping)} }}", ""]
(work / "schemathesis.toml").write_text("\n".join(lines))
PY

# ------------------------------------------------------------------ fuzz
operations=$(curl -fsS "$BASE/api/v1/openapi.json" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(1 for item in doc["paths"].values() for m in item if m in ("get", "put", "post", "delete", "patch")))')
step "schemathesis: $operations operations, up to $MAX_EXAMPLES examples each per phase ($PHASES)"
info "checks: ${CHECKS//,/, }"
args=(--config-file "$WORK/schemathesis.toml" --no-color run "$BASE/api/v1/openapi.json" --url "$BASE"
  --header "Authorization: Bearer $TOKEN"
  --checks "$CHECKS" --phases "$PHASES" --max-examples "$MAX_EXAMPLES" --workers "$WORKERS"
  --generation-database none --request-timeout 30
  --report junit --report-dir "$WORK")
[[ -z $SEED ]] || args+=(--seed "$SEED")
status=0
(cd "$WORK" && "$VENV/bin/schemathesis" "${args[@]}") || status=$?

echo
echo "deploy/fuzz-api.sh finished in $(($(date +%s) - started)) s (report: ${WORK#"$ROOT"/}/)"
if ((status != 0)); then
  [[ -z ${log:-} ]] || echo "the fleet's log: ${log#"$ROOT"/}"
  exit "$status"
fi
