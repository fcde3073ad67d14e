#!/bin/sh
# openbao/openbao's start-up: bao subcommands run as bao, anything else as
# given (docker-compose.yml's vault-init runs a shell script).
set -eu
case "${1:-}" in
  -*) set -- bao "$@" ;;
  server | version | status | kv | auth | policy | operator | read | write | login | secrets) set -- bao "$@" ;;
esac
exec "$@"
