#!/bin/sh
# The official nginx image's start-up steps that our configuration uses:
# NGINX_ENTRYPOINT_LOCAL_RESOLVERS puts the container's name servers into
# NGINX_LOCAL_RESOLVERS, then every /etc/nginx/templates/*.template is
# rendered into NGINX_ENVSUBST_OUTPUT_DIR, replacing only variables that are
# set (nginx's own $host and friends stay).
set -eu
if [ "${1:-}" = nginx ]; then
  if [ -n "${NGINX_ENTRYPOINT_LOCAL_RESOLVERS:-}" ]; then
    NGINX_LOCAL_RESOLVERS=$(awk 'BEGIN{ORS=" "} $1=="nameserver" {if ($2 ~ ":") print "[" $2 "]"; else print $2}' /etc/resolv.conf)
    export NGINX_LOCAL_RESOLVERS="${NGINX_LOCAL_RESOLVERS% }"
  fi
  out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  # shellcheck disable=SC2016,SC2046 # a literal ${NAME} for each variable name
  defined=$(printf '${%s} ' $(env | cut -d= -f1))
  for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    name=$(basename "$template" .template)
    envsubst "$defined" <"$template" >"$out/$name"
    echo "rendered $template to $out/$name"
  done
fi
exec "$@"
