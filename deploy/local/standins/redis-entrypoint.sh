#!/bin/sh
# The official redis image's start-up: runs the server as the redis user
# from /data, with the arguments compose gives.
set -eu
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
