#!/usr/bin/env python3
"""Lists, describes and calls each backend's gRPC API through server
reflection with grpcio (the Python gRPC library), as grpcurl-style tools
do: no .proto files on this side. Against the running `./dev up` fleet:

    tools/grpc_reflection_check.sh [users=HOST:PORT ...]

Each service must list exactly its own service, the health service and
reflection; every method must resolve to its request and response types;
a call built from the reflected descriptors (grpc.health.v1.Health/Check
for the service) must answer SERVING. Exit 1 on the first failure.
"""
import sys

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
}
HEALTH = "grpc.health.v1.Health"


def check(name: str, address: str, service: str) -> None:
    channel = grpc.insecure_channel(address)
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
    channel.close()


def main() -> None:
    addresses = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    for name, (address, service) in SERVICES.items():
        check(name, addresses.get(name, address), service)
    print("grpc-reflection: every service is listed, described and callable by reflection")


if __name__ == "__main__":
    main()
