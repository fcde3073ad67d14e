#!/usr/bin/env python3
"""The backup round trip, as a user sees it (docs/deployment.md, section 10).

    backup_checks.py populate --base http://localhost --state FILE
    backup_checks.py verify   --base http://localhost --state FILE

populate: two people, a group with the second as member, messages with
reactions, an uploaded picture with its thumbnail attached to a message;
writes what it made (ids, contents, the file's and thumbnail's SHA-256,
passwords, a refresh token) to FILE.

verify, after backup, destroyed volumes and restore: both sign in again
with their passwords and the saved refresh token still works (sessions
are in Postgres); the member still belongs to the group; every message is
in the channel's history with its content, reactions and attachment; the
picture and thumbnail download byte for byte; a new message reaches the
member's WebSocket live with the next sequence number. Redis started empty:
the member's socket resyncs from the REST history, as every client does
after a reconnect.
"""

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stack_checks  # noqa: E402  (shares its HTTP and WebSocket helpers)
from stack_checks import Listener, call, ok, png  # noqa: E402

PASSWORD = "correct horse battery"


def register(name):
    auth = call("POST", "/auth/register", {
        "username": name, "email": f"{name}@example.com",
        "display_name": name, "password": PASSWORD})
    return auth


def sha256(data):
    return hashlib.sha256(data).hexdigest()


async def wait_ready(media_id, token):
    deadline = time.monotonic() + 60
    info = {}
    while time.monotonic() < deadline:
        info = call("GET", f"/media/{media_id}/info", token=token)
        if info.get("state") == "ready":
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"FAILED upload never became ready: {info}")


async def populate(state_file):
    stack_checks.first_answer()
    run = uuid.uuid4().hex[:8]
    owner = register(f"backup_owner_{run}")
    member = register(f"backup_member_{run}")
    owner_token, member_token = owner["access_token"], member["access_token"]
    group = call("POST", "/groups", {"name": f"backup {run}"}, owner_token)
    channel = group["default_channel_id"]
    call("POST", f"/groups/{group['id']}/members", {"user_id": member["user"]["id"]}, owner_token)
    messages = []
    for n in range(3):
        sent = call("POST", f"/channels/{channel}/messages", {"content": f"before backup {n}"},
                    owner_token)
        call("POST", f"/messages/{sent['id']}/reactions", {"emoji": "👍"}, member_token)
        messages.append({"id": sent["id"], "content": sent["content"], "seq": sent["seq"]})
    image = png(320, 240)
    media = call("POST", "/media?filename=backup.png", token=owner_token, raw=image,
                 content_type="image/png")
    await wait_ready(media["id"], owner_token)
    thumbnail = call("GET", f"/media/{media['id']}/thumbnail?size=64", token=owner_token)
    # What a download serves (the cleaned image, metadata stripped), as it is
    # compared after the restore.
    served = call("GET", f"/media/{media['id']}", token=owner_token)
    sent = call("POST", f"/channels/{channel}/messages",
                {"content": "a picture", "attachments": [media["id"]]}, owner_token)
    messages.append({"id": sent["id"], "content": sent["content"], "seq": sent["seq"]})
    state = {
        "owner": owner["user"]["username"], "member": member["user"]["username"],
        "member_id": member["user"]["id"], "member_refresh": member["refresh_token"],
        "group": group["id"], "channel": channel, "messages": messages,
        "media": media["id"], "file_sha256": sha256(served), "thumb_sha256": sha256(thumbnail),
    }
    with open(state_file, "w", encoding="utf-8") as out:
        json.dump(state, out)
    ok(f"populated: 2 users, group {group['id'][:8]}…, {len(messages)} messages with reactions, "
       f"a {len(image)}-byte picture with its thumbnail")


def login(name):
    return call("POST", "/auth/login", {"login": name, "password": PASSWORD})["access_token"]


async def verify(state_file):
    with open(state_file, encoding="utf-8") as source:
        state = json.load(source)
    stack_checks.first_answer()
    owner_token, member_token = login(state["owner"]), login(state["member"])
    refreshed = call("POST", "/auth/refresh", {"refresh_token": state["member_refresh"]})
    assert refreshed.get("access_token"), refreshed
    ok("both people sign in with their passwords; the saved refresh token still works")

    members = call("GET", f"/groups/{state['group']}/members", token=owner_token)
    if not any(m["user_id"] == state["member_id"] for m in members["members"]):
        raise SystemExit(f"FAILED the member is gone from the group: {members}")
    page = call("GET", f"/channels/{state['channel']}/messages?limit=50", token=member_token)
    found = {message["id"]: message for message in page["messages"]}
    for saved in state["messages"]:
        message = found.get(saved["id"])
        if message is None or message["content"] != saved["content"] or message["seq"] != saved["seq"]:
            raise SystemExit(f"FAILED message {saved} restored as {message}")
        if saved["content"].startswith("before backup") and \
                [r["emoji"] for r in message.get("reactions", [])] != ["👍"]:
            raise SystemExit(f"FAILED reactions of {saved['id']}: {message.get('reactions')}")
    with_file = found[state["messages"][-1]["id"]]
    if [a["media_id"] for a in with_file.get("attachments", [])] != [state["media"]]:
        raise SystemExit(f"FAILED attachment of the last message: {with_file.get('attachments')}")
    ok(f"membership and all {len(state['messages'])} messages with contents, sequence numbers, "
       "reactions and the attachment")

    original = call("GET", f"/media/{state['media']}", token=member_token)
    thumbnail = call("GET", f"/media/{state['media']}/thumbnail?size=64", token=member_token)
    if sha256(original) != state["file_sha256"]:
        raise SystemExit("FAILED the picture differs from before the backup")
    if sha256(thumbnail) != state["thumb_sha256"]:
        raise SystemExit("FAILED the thumbnail differs from before the backup")
    ok(f"the picture ({len(original)} bytes) and its thumbnail download byte for byte")

    last_seq = max(message["seq"] for message in state["messages"])
    async with Listener(member_token, state["channel"]) as listener:
        sent = call("POST", f"/channels/{state['channel']}/messages",
                    {"content": "after restore"}, owner_token)
        got = await listener.wait_for(sent["id"])
        if got["seq"] != last_seq + 1:
            raise SystemExit(f"FAILED the new message has seq {got['seq']}, expected {last_seq + 1}")
    ok(f"a new message reached the member's socket live with seq {last_seq + 1}")
    print("PASSED", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["populate", "verify"])
    parser.add_argument("--base", default="http://localhost")
    parser.add_argument("--state", required=True)
    ARGS = parser.parse_args()
    stack_checks.ARGS = ARGS
    sys.exit(asyncio.run(populate(ARGS.state) if ARGS.phase == "populate" else verify(ARGS.state)))
