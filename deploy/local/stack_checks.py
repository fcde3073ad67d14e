#!/usr/bin/env python3
"""The API as a user meets it, against a running compose stack.

    stack_checks.py --base http://localhost --wscat PATH [--replicas N] [--web-push]

1. `wscat -c "ws://HOST/ws?token=$T"` receives `connected` (the original
   quick start's check, with the npm client people use).
2. Two people register; one creates a group and adds the other, who listens
   on a WebSocket in the group's channel; a message sent over REST arrives
   there as `new_message`.
3. An uploaded PNG is stored (S3), its thumbnail is made (media worker,
   Kafka) and downloads as a PNG, and a message carrying it is delivered.
4. With --web-push (a stack whose Vault holds the notifier's VAPID key),
   Web Push is on: the gateway hands out the notifier's VAPID public key
   (the key vault-init made; gateway -> notifier over mutual TLS) and the
   notifier answers for the user's notification settings (its schema).
5. With --replicas N (the prod overlay: N gateways behind nginx), 2N more
   sockets, spread by nginx, each get a message (compose.sh checks from
   each replica's metrics that every one served traffic).
Prints each step; exits non-zero at the first that fails.
"""

import argparse
import asyncio
import base64
import json
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib

import websockets

ARGS = None


def call(method, path, body=None, token=None, raw=None, content_type="application/json"):
    request = urllib.request.Request(ARGS.base + "/api/v1" + path, method=method)
    request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, data, timeout=30) as response:
            payload = response.read()
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        raise SystemExit(f"FAILED {method} {path}: {err.code} {err.read()[:300]!r}") from None
    return json.loads(payload or b"null") if kind.startswith("application/json") else payload


def ok(text):
    print(f"    ok {text}", flush=True)


def png(width, height):
    """An RGB PNG with a gradient, made with zlib alone."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 128)) for x in range(width))
        for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def register(name):
    auth = call("POST", "/auth/register", {
        "username": name, "email": f"{name}@example.com",
        "display_name": name, "password": "correct horse battery"})
    return auth["user"]["id"], auth["access_token"]


def first_answer(within=180.0, in_a_row=3, quick=2.0):
    """Health checks say a process listens, not that its own connections
    (database, Redis, broker, the other services) open quickly: right after
    `up`, new connections can stall for a while (seen under podman while its
    container DNS answered slowly: a backend healthy but unable to reach
    Postgres or the users service for ~50 s). Waits until `in_a_row` probes
    in a row each answer within `quick` seconds, a probe being what touches
    every backend: register (users), create a group (groups), send a
    message in it (messages, and groups' Authorize), upload a small PNG
    (media). Prints every
    slow or failed probe and says how long the warm-up took. The checks
    after it get no retries."""
    started, streak = time.monotonic(), 0
    while streak < in_a_row:
        if time.monotonic() - started > within:
            raise SystemExit(f"FAILED the API did not answer quickly {in_a_row} times in a row "
                             f"within {within:.0f} s")
        asked = time.monotonic()
        try:
            _, token = register(f"stack_probe_{uuid.uuid4().hex[:8]}")
            group = call("POST", "/groups", {"name": "probe"}, token)
            call("POST", f"/channels/{group['default_channel_id']}/messages", {"content": "probe"}, token)
            call("POST", "/media?filename=probe.png", token=token, raw=png(8, 8), content_type="image/png")
            took = time.monotonic() - asked
            streak = streak + 1 if took <= quick else 0
            if took > quick:
                print(f"    .. a probe took {took:.1f} s, waiting for quick answers", flush=True)
        except SystemExit as failure:
            if " 50" not in str(failure):
                raise
            streak = 0
            print(f"    .. not answering yet ({str(failure)[7:70]}…)", flush=True)
            time.sleep(2.0)
    ok(f"the API answered {in_a_row} probes (register, create a group, send, upload) in a row within "
       f"{quick:.0f} s each, {time.monotonic() - started:.1f} s after the stack was up")


def wscat_connected(token):
    """wscat as a person runs it: lines typed are sent, frames are printed.
    A ping is typed; two seconds later input ends, and so does wscat."""
    url = ARGS.base.replace("http", "ws", 1) + f"/ws?token={token}"
    wscat = subprocess.Popen([ARGS.wscat, "-c", url], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    wscat.stdin.write(json.dumps({"type": "ping", "data": {"n": 1}}) + "\n")
    wscat.stdin.flush()
    time.sleep(2.0)
    out, err = wscat.communicate(timeout=30)
    frames = [json.loads(line[line.index("{"):]) for line in out.splitlines() if "{" in line]
    types = [frame.get("type") for frame in frames]
    if types[:1] != ["connected"] or "pong" not in types:
        raise SystemExit(f"FAILED wscat printed {out[:300]!r} {err[:300]!r}")
    ok('wscat -c "ws://…/ws?token=$T" received connected, then pong for a typed ping')


class Listener:
    """A socket in one channel that keeps the `new_message` frames it gets."""

    def __init__(self, token, room):
        self.token, self.room, self.messages = token, room, []

    async def __aenter__(self):
        url = ARGS.base.replace("http", "ws", 1) + f"/ws?token={self.token}"
        self.socket = await websockets.connect(url)
        hello = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
        assert hello["type"] == "connected", hello
        await self.socket.send(json.dumps({"type": "join_room", "data": {"room_id": self.room}}))
        self.task = asyncio.create_task(self.read())
        await asyncio.sleep(0.5)
        return self

    async def read(self):
        async for raw in self.socket:
            frame = json.loads(raw)
            if frame["type"] == "heartbeat":
                await self.socket.send(json.dumps({"type": "pong", "data": frame["data"]}))
            elif frame["type"] == "new_message":
                self.messages.append(frame["data"])

    async def wait_for(self, message_id, within=20.0):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for message in self.messages:
                if message["id"] == message_id:
                    return message
            await asyncio.sleep(0.1)
        raise SystemExit(f"FAILED message {message_id} did not arrive within {within} s")

    async def __aexit__(self, *_):
        self.task.cancel()
        await self.socket.close()


async def main():
    first_answer()
    run = uuid.uuid4().hex[:8]
    owner, owner_token = register(f"stack_owner_{run}")
    member, member_token = register(f"stack_member_{run}")
    ok("two accounts registered (POST /auth/register)")
    wscat_connected(member_token)

    group = call("POST", "/groups", {"name": f"stack {run}"}, owner_token)
    channel = group["default_channel_id"]
    call("POST", f"/groups/{group['id']}/members", {"user_id": member}, owner_token)
    ok(f"group {group['id'][:8]}… created, member added")

    async with Listener(member_token, channel) as listener:
        started = time.monotonic()
        sent = call("POST", f"/channels/{channel}/messages", {"content": f"hello {run}"}, owner_token)
        got = await listener.wait_for(sent["id"])
        assert got["content"] == f"hello {run}", got
        ok(f"message delivered over the WebSocket in {1000 * (time.monotonic() - started):.0f} ms")

        image = png(640, 480)
        media = call("POST", "/media?filename=gradient.png", token=owner_token, raw=image,
                     content_type="image/png")
        deadline = time.monotonic() + 60
        info = media
        while info.get("state") != "ready" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            info = call("GET", f"/media/{media['id']}/info", token=owner_token)
        if info.get("state") != "ready":
            raise SystemExit(f"FAILED upload never became ready: {info}")
        thumbnail = call("GET", f"/media/{media['id']}/thumbnail?size=64", token=owner_token)
        if not thumbnail[:8] == b"\x89PNG\r\n\x1a\n" and not thumbnail[:3] == b"\xff\xd8\xff":
            raise SystemExit(f"FAILED thumbnail is not an image: {thumbnail[:16]!r}")
        ok(f"upload of {len(image)} bytes ready with a {len(thumbnail)}-byte thumbnail")
        sent = call("POST", f"/channels/{channel}/messages",
                    {"content": "a picture", "attachments": [media["id"]]}, owner_token)
        got = await listener.wait_for(sent["id"])
        ok(f"message with the attachment delivered ({len(got.get('attachments', []))} attachment)")

    if ARGS.web_push:
        web_push(member_token)
    if ARGS.replicas > 1:
        await across_replicas(owner_token, member_token, channel)
    print("PASSED", flush=True)


def web_push(token):
    """The notifier behind the gateway, with its VAPID key from Vault."""
    key = call("GET", "/push/vapid-key", token=token)["public_key"]
    point = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    if len(point) != 65 or point[0] != 4:
        raise SystemExit(f"FAILED the VAPID public key is not an uncompressed P-256 point: {key!r}")
    call("GET", "/users/me/notification-settings", token=token)
    ok("GET /push/vapid-key answered the notifier's P-256 public key; notification settings read")


async def across_replicas(owner_token, member_token, channel):
    """Sockets spread by nginx over the gateway replicas all get a message."""
    listeners = []
    try:
        for _ in range(2 * ARGS.replicas):
            listeners.append(await Listener(member_token, channel).__aenter__())
        sent = call("POST", f"/channels/{channel}/messages", {"content": "to all replicas"}, owner_token)
        for listener in listeners:
            await listener.wait_for(sent["id"])
        ok(f"{len(listeners)} more sockets through the proxy, the message delivered on each")
    finally:
        for listener in listeners:
            await listener.__aexit__()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://localhost")
    parser.add_argument("--wscat", required=True)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--web-push", action="store_true",
                        help="also check the notifier's Web Push key and settings")
    ARGS = parser.parse_args()
    sys.exit(asyncio.run(main()))
