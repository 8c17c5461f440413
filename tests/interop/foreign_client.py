#!/usr/bin/python3
"""A foreign gRPC client (Debian's python3-grpcio, no generated code) against a running chain.

Checks what generic gRPC tooling relies on: grpc.health.v1 over mTLS, server reflection listing
the sarloop services, and that a plaintext connection and a connection without a client
certificate are both refused. Usage: foreign_client.py PKI_DIR BASE_PORT
"""
import sys

import grpc

PKI, BASE = sys.argv[1], int(sys.argv[2])
INSTANCES = {"ukfiu": (1, "sarloop.v1.Ukfiu"), "nca": (2, "sarloop.v1.Nca"),
             "force-NFK": (11, "sarloop.v1.Force"), "racu-ERSOU": (21, "sarloop.v1.Racu")}
failures = []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def creds(identity):
    return grpc.ssl_channel_credentials(
        root_certificates=read(f"{PKI}/ca/ca.pem"),
        private_key=read(f"{PKI}/{identity}/key.pem"),
        certificate_chain=read(f"{PKI}/{identity}/cert.pem"))


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    if not ok:
        failures.append(name)


identity = "analyst-alice"
for instance, (offset, service) in INSTANCES.items():
    target = f"localhost:{BASE + offset}"
    with grpc.secure_channel(target, creds(identity)) as channel:
        # HealthCheckRequest{} is empty; HealthCheckResponse{status: SERVING} is 08 01.
        health = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            reply = health(b"", timeout=10)
            check(f"{instance} health", reply == b"\x08\x01", repr(reply))
        except grpc.RpcError as e:
            check(f"{instance} health", False, str(e.code()))
        # ServerReflectionRequest{list_services: ""} is field 7, empty string: 3a 00.
        reflection = channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        try:
            replies = b"".join(reflection(iter([b"\x3a\x00"]), timeout=10))
            check(f"{instance} reflection lists {service}", service.encode() in replies)
        except grpc.RpcError as e:
            check(f"{instance} reflection", False, str(e.code()))

    # No plaintext listener exists.
    with grpc.insecure_channel(target) as channel:
        try:
            channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
            check(f"{instance} refuses plaintext", False, "plaintext call succeeded")
        except grpc.RpcError as e:
            check(f"{instance} refuses plaintext", e.code() == grpc.StatusCode.UNAVAILABLE,
                  str(e.code()))

    # TLS without a client certificate is refused at the handshake.
    no_cert = grpc.ssl_channel_credentials(root_certificates=read(f"{PKI}/ca/ca.pem"))
    with grpc.secure_channel(target, no_cert) as channel:
        try:
            channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
            check(f"{instance} refuses a caller without certificate", False, "call succeeded")
        except grpc.RpcError as e:
            check(f"{instance} refuses a caller without certificate",
                  e.code() == grpc.StatusCode.UNAVAILABLE, str(e.code()))

print(f"{len(INSTANCES) * 4 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
