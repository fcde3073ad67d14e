#!/usr/bin/env python3
"""Lists, describes and calls each backend's gRPC API through server
reflection with grpcio (the Python gRPC library), as grpcurl-style tools
do: no .proto files on this side. Against the running `./dev up` fleet:

    tools/grpc_reflection_check.sh [users=HOST:PORT ...]

Each service must list exactly its own service, the health service and
reflection; every method must resolve to its request and response types;
a call built from the reflected descriptors (grpc.health.v1.Health/Check
for the service) must answer SERVING. Exit 1 on the first failure.

The fleet speaks mutual TLS: the script issues itself an `operator`
certificate from OpenBao's PKI engine (VAULT_ADDR, VAULT_TOKEN; the dev
server's root token by default) as an operator's grpcurl would use, and
also checks the door from outside the table: a call without a client
certificate is UNAUTHENTICATED, and the operator may not sign anyone up
(PERMISSION_DENIED).
"""
import json
import os
import sys
import urllib.request

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICES = {
    "users": ("127.0.0.1:50051", "messenger.users.v1.UsersService"),
    "groups": ("127.0.0.1:50052", "messenger.groups.v1.GroupsService"),
    "messages": ("127.0.0.1:50053", "messenger.messages.v1.MessagesService"),
    "media": ("127.0.0.1:50054", "messenger.media.v1.MediaService"),
    "notifier": ("127.0.0.1:50055", "messenger.notifier.v1.NotifierService"),
}
HEALTH = "grpc.health.v1.Health"


DOMAIN = os.environ.get("GRPC_MTLS_DOMAIN", "messenger.internal")


def operator_certificate() -> dict:
    """An operator certificate, its key and the CA chain, from OpenBao."""
    addr = os.environ.get("VAULT_ADDR", "http://127.0.0.1:8200").rstrip("/")
    request = urllib.request.Request(
        f"{addr}/v1/pki/issue/operator",
        data=json.dumps({"common_name": f"operator.{DOMAIN}", "ttl": "300s"}).encode(),
        headers={"X-Vault-Token": os.environ.get("VAULT_TOKEN", "root")},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["data"]


def secure_channel(address: str, name: str, issued: dict, with_certificate: bool) -> grpc.Channel:
    authorities = "\n".join(issued["ca_chain"]).encode()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=authorities,
        private_key=issued["private_key"].encode() if with_certificate else None,
        certificate_chain=issued["certificate"].encode() if with_certificate else None,
    )
    # The address is an IP; the server's certificate names the service.
    options = [("grpc.ssl_target_name_override", f"{name}.{DOMAIN}")]
    return grpc.secure_channel(address, credentials, options)


def refused(channel: grpc.Channel, method: str, expected: grpc.StatusCode) -> None:
    call = channel.unary_unary(method, request_serializer=bytes, response_deserializer=bytes)
    try:
        call(b"", timeout=5)
    except grpc.RpcError as error:
        if error.code() != expected:
            raise SystemExit(f"{method}: {error.code()} {error.details()}, expected {expected}")
        return
    raise SystemExit(f"{method} answered a caller the table does not admit")


def check(name: str, address: str, service: str, issued: dict) -> None:
    channel = secure_channel(address, name, issued, with_certificate=True)
    database = ProtoReflectionDescriptorDatabase(channel)
    listed = sorted(database.get_services())
    expected = sorted([service, HEALTH, "grpc.reflection.v1.ServerReflection"])
    # The v1alpha endpoint names itself instead of v1.
    expected_alpha = sorted([service, HEALTH, "grpc.reflection.v1alpha.ServerReflection"])
    if listed not in (expected, expected_alpha):
        raise SystemExit(f"{name}: lists {listed}, expected {expected_alpha}")
    pool = DescriptorPool(database)
    methods = pool.FindServiceByName(service).methods
    if not methods:
        raise SystemExit(f"{name}: {service} has no methods")
    for method in methods:
        if not (method.input_type.full_name and method.output_type.full_name):
            raise SystemExit(f"{name}: {method.full_name} has no types")
    health = pool.FindServiceByName(HEALTH).FindMethodByName("Check")
    request = message_factory.GetMessageClass(health.input_type)
    response = message_factory.GetMessageClass(health.output_type)
    call = channel.unary_unary(
        f"/{HEALTH}/Check",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )
    answer = call(request(service=service), timeout=5)
    status = health.output_type.fields_by_name["status"].enum_type.values_by_number[answer.status].name
    if status != "SERVING":
        raise SystemExit(f"{name}: health says {status}")
    sample = ", ".join(method.name for method in list(methods)[:3])
    print(f"ok {name} at {address}: {len(methods)} methods ({sample}, ...), health {status}")
    # Operators may call reflection and Info, nothing else.
    forbidden = next(method.name for method in methods if method.name != "Info")
    bare = secure_channel(address, name, issued, with_certificate=False)
    refused(bare, f"/{service}/{forbidden}", grpc.StatusCode.UNAUTHENTICATED)
    refused(channel, f"/{service}/{forbidden}", grpc.StatusCode.PERMISSION_DENIED)
    print(f"ok {name}: {forbidden} refuses a caller without a certificate and the operator")
    bare.close()
    channel.close()


def main() -> None:
    addresses = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    issued = operator_certificate()
    for name, (address, service) in SERVICES.items():
        check(name, addresses.get(name, address), service, issued)
    print("grpc-reflection: every service is listed, described and callable by reflection over mTLS")


if __name__ == "__main__":
    main()
