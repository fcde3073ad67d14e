# Sourced by deploy/validate.sh and deploy/fuzz-api.sh: a Python venv that
# holds exactly the pinned tools, installed on first use (later runs need no
# network).
#
#   ensure_pinned_venv VENV PIN...   e.g. ensure_pinned_venv .local/x-venv a==1.2
#
# PINNED_VENV_IMPORTS: extra modules (space-separated) that must import too.

pinned_venv_ok() { # VENV PIN...
  local venv=$1
  shift
  [[ -x $venv/bin/python ]] || return 1
  PINNED_VENV_IMPORTS=${PINNED_VENV_IMPORTS:-} "$venv/bin/python" - "$@" <<'PY' 2>/dev/null
import importlib, os, sys
from importlib.metadata import PackageNotFoundError, version
for pin in sys.argv[1:]:
    name, wanted = pin.split("==")
    try:
        if version(name) != wanted:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
for module in os.environ["PINNED_VENV_IMPORTS"].split():
    importlib.import_module(module)
PY
}

ensure_pinned_venv() { # VENV PIN...
  local venv=$1
  shift
  printf '==> tools (%s)\n' "${venv#"$ROOT"/}"
  if pinned_venv_ok "$venv" "$@"; then
    printf '    present: %s\n' "$*"
    return 0
  fi
  printf '    installing %s\n' "$*"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
  pinned_venv_ok "$venv" "$@" || {
    echo "error: $* did not install at the pinned versions" >&2
    exit 2
  }
}
