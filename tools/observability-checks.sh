#!/usr/bin/env bash
# Offline checks of what operators watch the fleet with:
#   - promtool check rules/config on deploy/prometheus;
#   - promtool test rules: every alert fires on synthetic series and resolves;
#   - every metric the dashboard and the rules query is one the code exports
#     (tools/check-metric-names.py).
# Installs Debian's `prometheus` package (for promtool) when it is missing.
#
#   tools/observability-checks.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/deploy/prometheus"

if ! command -v promtool >/dev/null; then
  echo "==> installing promtool (Debian package prometheus)"
  [[ $(id -u) -eq 0 ]] || { echo "error: promtool missing; apt-get install prometheus" >&2; exit 2; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
echo "==> promtool ($(promtool --version 2>&1 | head -1 | awk '{print $3}'))"
promtool check rules rules.yml
for config in prometheus.local.yml prometheus.compose.yml; do
  promtool check config "$config" | grep -v '^$'
done
promtool test rules rules.test.yml
echo "==> dashboard and rules name only exported metrics"
python3 "$ROOT/tools/check-metric-names.py"
