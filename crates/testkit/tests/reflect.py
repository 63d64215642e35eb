"""What a gRPC client that is not tonic (Python grpcio) learns from one server's reflection and
health services. Prints one JSON object: for reflection v1 and v1alpha, the services listed and
whether the file of each listed service resolves; the health status of each service named on
the command line.

Usage: reflect.py HOST:PORT SERVICE...
"""

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

TIMEOUT_SECONDS = 10


def ask(channel, version, requests):
    # v1 and v1alpha messages are the same on the wire; only the method's path differs.
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(call(iter(requests), timeout=TIMEOUT_SECONDS))


def reflect(channel, version):
    listed = ask(channel, version, [reflection_pb2.ServerReflectionRequest(list_services="")])
    names = sorted(s.name for s in listed[0].list_services_response.service)
    resolved = ask(
        channel,
        version,
        [reflection_pb2.ServerReflectionRequest(file_containing_symbol=name) for name in names],
    )
    files = {
        name: len(answer.file_descriptor_response.file_descriptor_proto) > 0
        for name, answer in zip(names, resolved)
    }
    return {"services": names, "resolves": files}


def main():
    address, services = sys.argv[1], sys.argv[2:]
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT_SECONDS)
        health = health_pb2_grpc.HealthStub(channel)
        report = {
            "v1": reflect(channel, "v1"),
            "v1alpha": reflect(channel, "v1alpha"),
            "health": {
                name: health_pb2.HealthCheckResponse.ServingStatus.Name(
                    health.Check(
                        health_pb2.HealthCheckRequest(service=name), timeout=TIMEOUT_SECONDS
                    ).status
                )
                for name in services
            },
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
