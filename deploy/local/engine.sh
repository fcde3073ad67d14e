# shellcheck shell=bash
# Sourced by deploy/local/compose.sh: a container engine with a
# Docker-compatible API on this machine.
#
# Docker when an engine answers `docker info`; otherwise podman (installed
# from Debian's packages when missing) with its API socket in .local/, the
# settings this kind of sandbox needs, and a health-check runner where no
# systemd runs them. Sets ENGINE, DOCKER_HOST, STANDINS and RUNTIME_IMAGE.

PODMAN_SOCKET=$CSTATE/podman.sock
BASE_IMAGE=localhost/base/debian:bookworm-slim

# The Debian mirror this machine's apt uses (debootstrap fetches from it).
apt_mirror() {
  local uri
  uri=$(sed -n 's/^URIs: *\(\S*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n 1)
  [[ -n $uri ]] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [[ -n $uri ]] || die "no Debian mirror in /etc/apt/sources.list(.d): set DEBIAN_MIRROR"
  echo "$uri"
}

# Debian bookworm, minimal, as an image: the base of the runtime image and
# of the stand-ins when no registry offers debian:bookworm-slim.
ensure_base_image() {
  if podman image exists "$BASE_IMAGE"; then
    ok "base image $BASE_IMAGE"
    return 0
  fi
  command -v debootstrap >/dev/null || apt_install debootstrap
  local rootfs=$CSTATE/rootfs-bookworm started=$SECONDS
  step "building $BASE_IMAGE (debootstrap --variant=minbase bookworm, about 30 s)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-$(apt_mirror)}" >"$LOGS/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $LOGS/debootstrap.log)"
  # As debian:*-slim: no documentation, manual pages or translations, now or
  # from packages installed later.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
SLIM
  find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian}/* \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  ok "base image $BASE_IMAGE ($((SECONDS - started)) s)"
}

# Podman's defaults fail in some sandboxes (crun or runc may not set
# RLIMIT_NPROC/NOFILE; cgroups in hybrid mode): the repository's own
# containers.conf is used only when a plain `podman run` fails without it.
ensure_podman_settings() {
  local conf=$CSTATE/containers.conf
  if [[ -f $conf ]]; then export CONTAINERS_CONF=$conf; fi
  if podman run --rm --network none "$BASE_IMAGE" true >/dev/null 2>"$LOGS/podman-probe.log"; then
    ok "podman runs containers${CONTAINERS_CONF:+ (settings: ${conf#"$ROOT"/})}"
    return 0
  fi
  [[ -z ${CONTAINERS_CONF:-} ]] || die "podman cannot run a container even with $conf (see $LOGS/podman-probe.log)"
  step "podman's defaults fail here ($(tail -n 1 "$LOGS/podman-probe.log")); writing ${conf#"$ROOT"/}"
  cat >"$conf" <<'CONF'
# Written by deploy/local/engine.sh because `podman run` failed with the
# defaults: no default ulimits (the runtime may not set them here) and runc
# (crun refuses RLIMIT_NPROC in this sandbox).
[containers]
default_ulimits = []
# Podman 4.3's aardvark-dns can stop answering for a few seconds while a
# burst of containers joins the network, and the host's name server comes
# second in the containers' resolv.conf and does not know container names:
# short timeouts with more attempts ride that out instead of failing a
# lookup (seen once: vault-init's "lookup vault: i/o timeout"). The networks
# have no IPv6, so glibc (2.36+) asks for A records only.
dns_options = ["timeout:1", "attempts:5", "no-aaaa"]

[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF=$conf
  podman run --rm --network none "$BASE_IMAGE" true >/dev/null 2>"$LOGS/podman-probe.log" ||
    die "podman cannot run a container (see $LOGS/podman-probe.log)"
  ok "podman runs containers (settings: ${conf#"$ROOT"/})"
}

ensure_podman_service() {
  export DOCKER_HOST=unix://$PODMAN_SOCKET
  if ! alive "$CSTATE/podman-service.pid" || ! curl -fsS --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1; then
    step "starting podman's Docker-compatible API on ${PODMAN_SOCKET#"$ROOT"/}"
    rm -f "$PODMAN_SOCKET"
    daemon "$CSTATE/podman-service.pid" "$LOGS/podman-service.log" \
      podman system service --time=0 "unix://$PODMAN_SOCKET"
    local i
    for ((i = 0; i < 100; i++)); do
      curl -fsS --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -fsS --unix-socket "$PODMAN_SOCKET" http://d/_ping >/dev/null 2>&1 ||
      die "podman's API did not answer (see $LOGS/podman-service.log)"
  fi
  ok "Docker API (podman) at $DOCKER_HOST"
}

# Runs every project container's health check on its own interval, since
# podman leaves that to systemd timers, and none run here. Also records
# when each container first turned healthy (both engines).
start_health_runner() {
  stop_pid "$CSTATE/health-runner.pid" "health-check runner" >/dev/null
  local run=--run
  [[ $ENGINE == podman ]] || run=
  daemon "$CSTATE/health-runner.pid" "$LOGS/health-runner.log" \
    python3 "$ROOT/deploy/local/health.py" watch --engine "$ENGINE" --project "$PROJECT" \
    --times "$CSTATE/healthy-times.json" $run
}

ensure_engine() {
  step "container engine"
  if [[ -z ${ENGINE:-} ]]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker; else ENGINE=podman; fi
  fi
  case $ENGINE in
    docker)
      # The official images from a registry; stand-ins only when asked.
      STANDINS=${STANDINS:-0}
      RUNTIME_IMAGE=${RUNTIME_IMAGE:-debian:bookworm-slim}
      ok "Docker engine ($(docker version --format '{{.Server.Version}}'))"
      ;;
    podman)
      if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then apt_install podman runc; fi
      ensure_base_image
      ensure_podman_settings
      ensure_podman_service
      STANDINS=${STANDINS:-1}
      RUNTIME_IMAGE=${RUNTIME_IMAGE:-$BASE_IMAGE}
      ;;
    *) die "ENGINE must be docker or podman, not $ENGINE" ;;
  esac
  export ENGINE STANDINS RUNTIME_IMAGE
}
