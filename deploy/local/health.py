#!/usr/bin/env python3
"""Container health checks for a compose project, and when each passed.

    health.py watch --engine podman --project messenger --times FILE [--run]
    health.py report --times FILE [--wait SECONDS]

`watch` polls the project's containers once a second until it is stopped.
With --run it also runs each container's health check on the interval its
compose file gives (`podman healthcheck run`): podman schedules those with
systemd timers, and where no systemd runs, `depends_on: service_healthy`
would otherwise wait forever. It records, per container, when it started
and when its health check first passed; `report` prints that as seconds
to healthy per service.
"""

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime


def engine_json(engine, *args):
    out = subprocess.run([engine, *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        return []
    return json.loads(out.stdout)


def parse_time(text):
    """Docker's and podman's RFC 3339 times, with nanoseconds and any zone."""
    if not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    zone = ""
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        head = f"{head}.{digits[:6]}"
    else:
        for sign in ("Z", "+", "-"):
            if sign in head[19:]:
                head, zone = head[:19], head[19:]
    zone = zone.strip()
    if zone in ("Z", ""):
        zone = "+00:00"
    elif " " in zone:  # podman: "+0000 UTC"
        zone = zone.split()[0]
    if len(zone) == 5 and zone[0] in "+-":
        zone = f"{zone[:3]}:{zone[3:]}"
    fmt = "%Y-%m-%dT%H:%M:%S.%f%z" if "." in head else "%Y-%m-%dT%H:%M:%S%z"
    return datetime.strptime(head + zone, fmt).timestamp()


def project_containers(engine, project):
    ids = subprocess.run(
        [engine, "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, timeout=60).stdout.split()
    return engine_json(engine, "inspect", *ids) if ids else []


def health_of(container):
    state = container.get("State", {})
    health = state.get("Health") or state.get("Healthcheck") or {}
    return health.get("Status", "")


def watch(args):
    times, next_run = {}, {}
    while True:
        now = time.time()
        for container in project_containers(args.engine, args.project):
            name = container.get("Name", "").lstrip("/")
            config = container.get("Config", {})
            check = config.get("Healthcheck") or {}
            test = check.get("Test") or []
            if not test or test[0] == "NONE":
                continue
            state = container.get("State", {})
            started = parse_time(state.get("StartedAt", ""))
            entry = times.setdefault(name, {"service": config.get("Labels", {}).get(
                "com.docker.compose.service", name), "started": started, "healthy": None})
            if entry["started"] != started:  # restarted: measure again
                entry.update(started=started, healthy=None)
            interval = (check.get("Interval") or 30_000_000_000) / 1e9
            if name not in next_run or next_run[name][0] != started:
                # As Docker: the first check one interval after the start.
                next_run[name] = (started, (started or now) + interval)
            if state.get("Running") and args.run and now >= next_run[name][1]:
                next_run[name] = (started, now + interval)
                subprocess.Popen([args.engine, "healthcheck", "run", container["Id"]],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if entry["healthy"] is None and health_of(container) == "healthy":
                entry["healthy"] = now
        with open(args.times + ".tmp", "w") as out:
            json.dump(times, out, indent=1)
        subprocess.run(["mv", args.times + ".tmp", args.times], check=True)
        time.sleep(1.0)


def report(args):
    # The watcher polls once a second: give it time to see the last change.
    deadline = time.time() + args.wait
    while True:
        with open(args.times) as source:
            times = json.load(source)
        if all(entry["healthy"] for entry in times.values()) or time.time() > deadline:
            break
        time.sleep(1.0)
    print(f"    {'container':<32} {'seconds from start to healthy':>30}")
    unhealthy = 0
    for name, entry in sorted(times.items(), key=lambda item: item[1]["started"] or 0):
        if entry["healthy"] is None or entry["started"] is None:
            unhealthy += 1
            print(f"    {name:<32} {'never healthy':>30}")
        else:
            print(f"    {name:<32} {max(0.0, entry['healthy'] - entry['started']):>30.1f}")
    return 1 if unhealthy else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    watching = sub.add_parser("watch")
    watching.add_argument("--engine", required=True)
    watching.add_argument("--project", required=True)
    watching.add_argument("--times", required=True)
    watching.add_argument("--run", action="store_true")
    reporting = sub.add_parser("report")
    reporting.add_argument("--times", required=True)
    reporting.add_argument("--wait", type=float, default=15.0,
                           help="seconds to wait for containers not yet seen healthy")
    args = parser.parse_args()
    if args.command == "watch":
        watch(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
