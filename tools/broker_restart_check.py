#!/usr/bin/env python3
"""Broker restart against the fleet `./dev up` runs, as a user would see it.

    tools/broker_restart_check.sh            (wraps this in a pinned venv)

One member listens on a WebSocket while three others post 300 messages at
about 20/s through POST /api/v1/channels/{id}/messages with idempotency keys
(three senders stay inside the shipped send allowance of 120/min each). Three
seconds in, the local broker is killed with SIGKILL; 15 s later `./dev infra`
starts it again. Passes when every acknowledged message reaches the listener
exactly once within 30 s of the broker's return, with no service restarted.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import websockets

BASE = os.environ.get("GATEWAY", "http://127.0.0.1:8080")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL, RATE, KILL_AT, DOWN_FOR, DRAIN_WITHIN = 300, 20.0, 3.0, 15.0, 30.0


def call(method, path, body=None, token=None, headers=None):
    request = urllib.request.Request(BASE + path, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data, timeout=30) as response:
        return json.loads(response.read() or b"null")


def register(name):
    auth = call("POST", "/api/v1/auth/register", {
        "username": name, "email": f"{name}@example.com",
        "display_name": name, "password": "correct horse battery"})
    return auth["user"]["id"], auth["access_token"]


def broker_pid():
    with open(os.path.join(ROOT, ".local", "tansu.pid")) as pidfile:
        return int(pidfile.read().strip())


async def listen(token, channel, received, stop):
    url = BASE.replace("http", "ws", 1) + f"/ws?token={token}"
    async with websockets.connect(url) as socket:
        await socket.send(json.dumps({"type": "join_room", "data": {"room_id": channel}}))
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            frame = json.loads(raw)
            if frame["type"] == "heartbeat":
                await socket.send(json.dumps({"type": "pong", "data": {"n": frame["data"]["n"]}}))
            elif frame["type"] == "new_message":
                received.append((time.monotonic(), frame["data"]["id"]))


async def main():
    run = uuid.uuid4().hex[:8]
    owner, owner_token = register(f"brk_owner_{run}")
    senders = [register(f"brk_s{n}_{run}") for n in range(3)]
    listener_id, listener_token = register(f"brk_listener_{run}")
    group = call("POST", "/api/v1/groups", {"name": f"restart {run}"}, owner_token)
    channel = group["default_channel_id"]
    for user_id, _ in senders + [(listener_id, None)]:
        call("POST", f"/api/v1/groups/{group['id']}/members", {"user_id": user_id}, owner_token)

    received, stop = [], asyncio.Event()
    listening = asyncio.create_task(listen(listener_token, channel, received, stop))
    await asyncio.sleep(1.0)

    started = time.monotonic()
    times = {}

    async def broker_timeline():
        await asyncio.sleep(KILL_AT)
        os.kill(broker_pid(), signal.SIGKILL)
        times["killed"] = time.monotonic()
        print(f"{times['killed'] - started:5.1f} s  broker killed (SIGKILL)", flush=True)
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(subprocess.run, [os.path.join(ROOT, "dev"), "infra"],
                                check=True, stdout=subprocess.DEVNULL)
        times["back"] = time.monotonic()
        print(f"{times['back'] - started:5.1f} s  broker started again (./dev infra)", flush=True)

    broker = asyncio.create_task(broker_timeline())
    sent = []
    for n in range(TOTAL):
        await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
        _, token = senders[n % 3]
        message = await asyncio.to_thread(
            call, "POST", f"/api/v1/channels/{channel}/messages", {"content": f"m{n}"},
            token, {"Idempotency-Key": f"{run}-{n}"})
        sent.append(message["id"])
        if n % 50 == 49:
            print(f"{time.monotonic() - started:5.1f} s  {n + 1} sent and acknowledged, "
                  f"{len({m for _, m in received})} delivered", flush=True)
    await broker
    back_at = times["back"]

    deadline = back_at + DRAIN_WITHIN
    while time.monotonic() < deadline and len({m for _, m in received}) < len(sent):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # late duplicates would show here
    stop.set()
    await listening

    ids = [m for _, m in received]
    missing = set(sent) - set(ids)
    duplicates = len(ids) - len(set(ids))
    last = max((at for at, m in received), default=back_at)
    print(f"sent and acknowledged: {len(sent)}; delivered: {len(set(ids))}; "
          f"missing: {len(missing)}; duplicated: {duplicates}; "
          f"last delivery {last - back_at:.1f} s after the broker's return")
    if missing or duplicates:
        print("FAILED", file=sys.stderr)
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
