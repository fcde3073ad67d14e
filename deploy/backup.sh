#!/usr/bin/env bash
# Backup and restore of a compose deployment (docs/deployment.md, section 10).
#
#   deploy/backup.sh backup DIR    # while the stack runs
#   deploy/backup.sh restore DIR   # into a stack started on empty volumes
#
# COMPOSE is the compose command of your stack, as words, e.g.
#   COMPOSE="docker compose -f docker-compose.yml -f docker-compose.prod.yml"
# (default: "docker compose").
#
# backup writes DIR/messenger.pgdump (pg_dump -Fc of the whole database: one
# consistent snapshot of every service's schema), then DIR/media.tar (every
# stored file, thumbnail and cleaned image, through the media service's own
# storage credentials: `messenger-media objects export`), then DIR/SHA256SUMS.
# The database goes first: files are immutable and named by content, so
# every file the snapshot refers to is still there when the files are copied.
#
# restore checks DIR/SHA256SUMS, stops the six services, restores the
# database in one transaction (pg_restore --clean: the schemas the fresh
# stack migrated are replaced), imports the files (each blob checked
# against the SHA-256 it is named by), and starts the services again.
# Redis is not restored: its state is rebuilt (see the docs).
set -euo pipefail

usage() {
  echo "usage: $0 backup|restore DIR  (COMPOSE=\"docker compose -f ...\")" >&2
  exit 2
}
[[ $# == 2 ]] || usage
action=$1 dir=$2
read -ra compose <<<"${COMPOSE:-docker compose}"
SERVICES=(gateway users groups messages media notifier)

say() { printf '==> %s\n' "$*"; }
fail() { printf 'backup.sh: %s\n' "$*" >&2; exit 1; }

backup() {
  mkdir -p "$dir"
  [[ -z $(ls -A "$dir") ]] || fail "$dir is not empty"
  say "database: pg_dump -Fc messenger"
  "${compose[@]}" exec -T postgres pg_dump -U postgres -Fc messenger >"$dir/messenger.pgdump"
  say "media store: messenger-media objects export"
  "${compose[@]}" exec -T media messenger-media objects export >"$dir/media.tar"
  (cd "$dir" && sha256sum messenger.pgdump media.tar >SHA256SUMS)
  say "backup in $dir: $(du -sh "$dir" | cut -f1)"
}

restore() {
  [[ -f $dir/SHA256SUMS ]] || fail "$dir has no SHA256SUMS: not a backup"
  (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || fail "$dir is damaged (SHA256SUMS)"
  say "stopping ${SERVICES[*]}"
  "${compose[@]}" stop "${SERVICES[@]}"
  say "database: pg_restore --clean --single-transaction"
  "${compose[@]}" exec -T postgres pg_restore -U postgres -d messenger --clean --if-exists \
    --single-transaction <"$dir/messenger.pgdump"
  say "media store: messenger-media objects import"
  "${compose[@]}" run --rm --no-deps -T media messenger-media objects import <"$dir/media.tar"
  say "starting ${SERVICES[*]}"
  # --no-deps: the datastores run, and the one-shot init jobs must not run
  # again.
  "${compose[@]}" up -d --no-deps --no-build --no-recreate --wait --wait-timeout 300 "${SERVICES[@]}"
  say "restored from $dir"
}

case $action in
  backup) backup ;;
  restore) restore ;;
  *) usage ;;
esac
