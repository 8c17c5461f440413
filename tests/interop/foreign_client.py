#!/usr/bin/python3
"""A foreign gRPC client (Debian's python3-grpcio, no generated code) against a running chain.

Checks what generic gRPC tooling relies on: grpc.health.v1 over mTLS, overall and by service name;
server reflection, v1 (what grpcurl asks first) and v1alpha, through which alone a client lists
every service and describes every method as grpcurl would; that a plaintext connection and a
connection without a client certificate are both refused, and that an invalid field arrives as a google.rpc.BadRequest in the
grpc-status-details-bin trailer. Usage: foreign_client.py PKI_DIR BASE_PORT
"""
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from checks import check, finish

PKI, BASE = sys.argv[1], int(sys.argv[2])
INSTANCES = {"ukfiu": (1, "sarloop.v1.Ukfiu"), "nca": (2, "sarloop.v1.Nca"),
             "force-NFK": (11, "sarloop.v1.Force"), "racu-ERSOU": (21, "sarloop.v1.Racu")}


def read(path):
    with open(path, "rb") as f:
        return f.read()


def creds(identity):
    return grpc.ssl_channel_credentials(
        root_certificates=read(f"{PKI}/ca/ca.pem"),
        private_key=read(f"{PKI}/{identity}/key.pem"),
        certificate_chain=read(f"{PKI}/{identity}/cert.pem"))



def fields(buf):
    """The length-delimited fields of a protobuf message as {number: [bytes, ...]}; enough to walk
    google.rpc.Status -> Any -> BadRequest -> FieldViolation without generated code."""
    out, i = {}, 0

    def varint():
        nonlocal i
        value = shift = 0
        while True:
            b = buf[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < len(buf):
        key = varint()
        if key & 7 == 0:
            varint()
        elif key & 7 == 2:
            n = varint()
            out.setdefault(key >> 3, []).append(buf[i:i + n])
            i += n
        else:
            raise ValueError(f"unexpected wire type {key & 7}")
    return out


def string_field(number, text):
    data = text.encode()
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


def reflect(channel, version, requests):
    """Each request's reply through one ServerReflectionInfo stream, as fields."""
    call = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo")
    return [fields(reply) for reply in call(iter(requests), timeout=20)]


def describe_all(channel, version):
    """grpcurl's `list` then `describe` of every method, through reflection alone: the service
    names, then for each the file that declares it (with its imports) into a fresh descriptor
    pool, then each method's request and response types resolved there. Returns
    ({service: [method, ...]}, errors)."""
    listing = reflect(channel, version, [string_field(7, "")])[0]
    names = [fields(s)[1][0].decode() for s in fields(listing[6][0]).get(1, [])]
    replies = reflect(channel, version, [string_field(4, n) for n in names])
    pool, added, described, errors = descriptor_pool.DescriptorPool(), set(), {}, []
    for name, reply in zip(names, replies):
        if 7 in reply:
            errors.append(f"{name}: {reply[7]}")
            continue
        protos = [descriptor_pb2.FileDescriptorProto.FromString(b)
                  for b in fields(reply[4][0]).get(1, [])]
        pending = [p for p in protos if p.name not in added]
        while pending:  # imports first, as a descriptor pool requires
            ready = [p for p in pending if all(d in added for d in p.dependency)]
            if not ready:
                errors.append(f"{name}: imports missing from the reply")
                break
            for p in ready:
                pool.Add(p)
                added.add(p.name)
            pending = [p for p in pending if p.name not in added]
        try:
            service = pool.FindServiceByName(name)
            described[name] = [f"{m.name}({m.input_type.full_name}) "
                               f"returns ({m.output_type.full_name}) "
                               f"[{len(m.input_type.fields)} request fields]"
                               for m in service.methods]
        except KeyError as e:
            errors.append(f"{name}: {e}")
    return described, errors


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
        # Health by service name: HealthCheckRequest{service: name} is field 1.
        for name in (service, "sarloop.v1.Ops"):
            try:
                reply = health(string_field(1, name), timeout=10)
                check(f"{instance} health of {name}", reply == b"\x08\x01", repr(reply))
            except grpc.RpcError as e:
                check(f"{instance} health of {name}", False, str(e.code()))
        try:
            reply = health(string_field(1, "sarloop.v1.NoSuchService"), timeout=10)
            check(f"{instance} health of an unknown service is NOT_FOUND", False, repr(reply))
        except grpc.RpcError as e:
            check(f"{instance} health of an unknown service is NOT_FOUND",
                  e.code() == grpc.StatusCode.NOT_FOUND, str(e.code()))
        for version in ("v1", "v1alpha"):
            try:
                described, errors = describe_all(channel, version)
                methods = sum(len(m) for m in described.values())
                check(f"{instance} reflection {version} lists and describes every service "
                      f"({len(described)} services, {methods} methods)",
                      service in described and "sarloop.v1.Ops" in described and
                      f"grpc.reflection.{version}.ServerReflection" in described and
                      all(described.values()) and not errors,
                      f"{sorted(described)} {errors}")
                if version == "v1" and instance == "force-NFK":
                    for line in described[service]:
                        print(f"     {service}.{line}")
            except grpc.RpcError as e:
                check(f"{instance} reflection {version}", False, str(e.code()))

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

# An invalid field arrives structurally: google.rpc.Status{details: [Any(BadRequest)]} in the
# grpc-status-details-bin trailer. SubmitSarRequest{request_id: "r"} (0a 01 72) lacks the SAR.
with grpc.secure_channel(f"localhost:{BASE + 1}", creds("ukfiu-intake")) as channel:
    try:
        # A client system names the person it acts for on every call.
        channel.unary_unary("/sarloop.v1.Ukfiu/SubmitSar")(
            b"\x0a\x01r", timeout=10, metadata=(("x-sarloop-user", "foreign-client"),))
        check("ukfiu refuses a SAR-less SubmitSar", False, "call succeeded")
    except grpc.RpcError as e:
        trailer = dict(e.trailing_metadata() or ()).get("grpc-status-details-bin", b"")
        violations = []
        try:
            for any_ in fields(trailer).get(3, []):
                any_fields = fields(any_)
                if any_fields.get(1) == [b"type.googleapis.com/google.rpc.BadRequest"]:
                    for violation in fields(any_fields[2][0]).get(1, []):
                        violations.append(fields(violation)[1][0].decode())
        except (ValueError, IndexError, KeyError) as err:
            violations.append(f"undecodable: {err}")
        check("ukfiu names the invalid field in grpc-status-details-bin",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT and violations == ["sar"],
              f"{e.code()} {violations}")

# Bytes that are no request of the method's type are refused INVALID_ARGUMENT, naming the type, or
# the field whose text is not UTF-8: the servers parse each request themselves (common/rpc/serving.h).
USER = (("x-sarloop-user", "foreign-client"),)
with grpc.secure_channel(f"localhost:{BASE + 1}", creds("ukfiu-intake")) as channel:
    submit = channel.unary_unary("/sarloop.v1.Ukfiu/SubmitSar")
    for what, payload, expect in [
            ("malformed protobuf", b"\xff\xff\xff\xff", "sarloop.v1.SubmitSarRequest"),
            ("a truncated field", b"\x0a\x05ab", "sarloop.v1.SubmitSarRequest"),
            ("request_id not UTF-8", b"\x0a\x02\xc3\x28", "request_id")]:
        try:
            submit(payload, timeout=10, metadata=USER)
            check(f"ukfiu refuses {what}", False, "call succeeded")
        except grpc.RpcError as e:
            check(f"ukfiu refuses {what} with INVALID_ARGUMENT naming {expect}",
                  e.code() == grpc.StatusCode.INVALID_ARGUMENT and expect in (e.details() or ""),
                  f"{e.code()} {e.details()}")
    # The server still serves after them.
    try:
        reply = channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=10)
        check("ukfiu serves after the malformed requests", reply == b"\x08\x01", repr(reply))
    except grpc.RpcError as e:
        check("ukfiu serves after the malformed requests", False, str(e.code()))
    try:
        channel.unary_unary("/sarloop.v1.Ukfiu/NoSuchMethod")(b"", timeout=10, metadata=USER)
        check("an unknown method is refused", False, "call succeeded")
    except grpc.RpcError as e:
        # The policy refuses a method it does not name before the server looks it up.
        check("an unknown method is refused",
              e.code() in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.PERMISSION_DENIED),
              str(e.code()))
# A peer's delivery with malformed bytes: refused the same way, not INTERNAL.
with grpc.secure_channel(f"localhost:{BASE + 11}", creds("ukfiu")) as channel:
    try:
        channel.unary_unary("/sarloop.v1.Delivery/Deliver")(b"\x0a\xff", timeout=10)
        check("force-NFK refuses a malformed delivery", False, "call succeeded")
    except grpc.RpcError as e:
        check("force-NFK refuses a malformed delivery with INVALID_ARGUMENT",
              e.code() == grpc.StatusCode.INVALID_ARGUMENT and
              "sarloop.v1.DeliverRequest" in (e.details() or ""), f"{e.code()} {e.details()}")

finish()
