# shellcheck shell=bash
# Helpers shared by ./dev and deploy/local/compose.sh (sourced by both).

step() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
ok() { printf '    \033[32mok\033[0m %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Starts a long-running process detached from this shell: no inherited
# descriptors (a caller's pipe would otherwise stay open), output to a log.
daemon() { # pidfile log command...
  local pidfile=$1 log=$2
  shift 2
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if [[ $fd -gt 2 ]]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec nohup "$@" >>"$log" 2>&1 </dev/null
  ) &
  echo $! >"$pidfile"
}

# Stops what a pidfile names: SIGTERM, up to 10 s, then SIGKILL.
stop_pid() { # pidfile name
  if alive "$1"; then
    local pid
    pid=$(cat "$1")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    ok "stopped $2"
  fi
  rm -f "$1"
}
