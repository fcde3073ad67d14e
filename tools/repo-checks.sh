#!/usr/bin/env bash
# Repository hygiene: no tracked runtime state or build output, nothing large.
#
#   tools/repo-checks.sh
#
# Fails, naming each file, when a tracked file lies under a `.local/` or
# `target/` folder at any depth or is larger than 1 MiB.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LIMIT=$((1024 * 1024))

failures=0
while IFS= read -r -d '' path; do
  reason=
  case "/$path" in
    */.local/* | */target/*) reason="runtime or build output (under .local/ or target/)" ;;
  esac
  if [[ -z $reason && -f $path ]]; then
    size=$(stat -c %s -- "$path")
    ((size > LIMIT)) && reason="$size bytes, over the 1 MiB limit"
  fi
  if [[ -n $reason ]]; then
    echo "tracked file not allowed: $path: $reason" >&2
    failures=$((failures + 1))
  fi
done < <(git ls-files -z)

if ((failures > 0)); then
  echo "repo-checks: $failures tracked file(s) must leave git (git rm --cached)" >&2
  exit 1
fi
echo "repo-checks: tracked files clean ($(git ls-files | wc -l) files)"
