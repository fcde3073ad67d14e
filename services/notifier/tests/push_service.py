#!/usr/bin/env python3
"""A Web Push service on loopback for the notifier's tests.

It plays both the push service and the browser behind it: it makes a
subscription key pair and auth secret, prints them with its port as one
JSON line, then checks every push the way RFC 8030/8291/8292 say and
decrypts it with Mozilla's reference implementation (http_ece), so the
sender is proven against an implementation that is not ours.

    POST /push/<id>   checked, decrypted, recorded; 201
    POST /gone        410 (the subscription expired)
    POST /busy        429 with Retry-After: 7
    POST /slow/<id>   as /push/<id>, recorded at once but answered 4 s
                      later (a sender killed meanwhile never hears back)
    GET  /received    every push recorded so far (JSON)

A push that fails a check is recorded with the reason and answered 400.
"""

import base64
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

RECEIVER = ec.generate_private_key(ec.SECP256R1())
PUBLIC = RECEIVER.public_key().public_bytes(
    serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
)
AUTH = os.urandom(16)
URGENCIES = {"very-low", "low", "normal", "high"}
TOPIC_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
RECEIVED = []


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def check_vapid(header, origin):
    """RFC 8292: `vapid t=<ES256 JWT>, k=<public key>`; returns k."""
    scheme, _, params = (header or "").partition(" ")
    if scheme != "vapid":
        raise ValueError(f"authorization scheme {scheme!r}")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    head_b64, claims_b64, signature_b64 = fields["t"].split(".")
    head = json.loads(b64d(head_b64))
    if head.get("alg") != "ES256" or head.get("typ") != "JWT":
        raise ValueError(f"JWT header {head}")
    claims = json.loads(b64d(claims_b64))
    if claims.get("aud") != origin:
        raise ValueError(f"aud {claims.get('aud')!r} is not {origin!r}")
    now = time.time()
    if not now < claims.get("exp", 0) <= now + 24 * 3600:
        raise ValueError("exp is not within the next 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
        raise ValueError("sub is not a mailto: or https: URL")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(fields["k"]))
    raw = b64d(signature_b64)
    if len(raw) != 64:
        raise ValueError("the signature is not 64 bytes (r || s)")
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(signature, f"{head_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    return fields["k"]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/received":
            self.answer(200, json.dumps(RECEIVED).encode(), [("Content-Type", "application/json")])
        else:
            self.answer(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/gone":
            return self.answer(410)
        if self.path == "/busy":
            return self.answer(429, headers=[("Retry-After", "7")])
        record = {"path": self.path, "at": time.time()}
        try:
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError("Content-Encoding is not aes128gcm")
            record["ttl"] = int(self.headers["TTL"])
            record["urgency"] = self.headers.get("Urgency", "normal")
            if record["urgency"] not in URGENCIES:
                raise ValueError("Urgency")
            topic = self.headers.get("Topic")
            if topic is not None and (len(topic) > 32 or not set(topic) <= TOPIC_CHARS):
                raise ValueError("Topic")
            record["topic"] = topic
            if len(body) > 4096:
                raise ValueError(f"body of {len(body)} bytes")
            host = self.headers["Host"]
            record["vapid_key"] = check_vapid(self.headers.get("Authorization"), f"http://{host}")
            plaintext = http_ece.decrypt(
                body, private_key=RECEIVER, auth_secret=AUTH, version="aes128gcm"
            )
            record["plaintext"] = plaintext.decode()
        except Exception as error:  # noqa: BLE001 - every failure is the answer
            record["error"] = repr(error)
            RECEIVED.append(record)
            return self.answer(400, repr(error).encode())
        RECEIVED.append(record)
        if self.path.startswith("/slow/"):
            time.sleep(4)
        self.answer(201, headers=[("Location", f"{self.path}/message")])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_address[1], "p256dh": b64e(PUBLIC), "auth": b64e(AUTH)}))
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
