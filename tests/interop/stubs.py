"""Python stubs for sarloop's API, generated from proto/ with protoc and Debian's
grpc_python_plugin (the README's integrator's guide shows the same command), and mTLS channels as
one identity of a local chain's PKI. Shared by the Python clients here."""
import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import types

import grpc


def load(repo, into=None):
    """Generates the stubs (into `into`, else a temporary directory removed at exit) unless `into`
    already holds them, and imports them. Returns a namespace: types_pb2, ukfiu_pb2, ukfiu_grpc,
    force_*, racu_*, nca_*, status_pb2, error_details_pb2, and dir (where they are)."""
    if into is None:
        into = tempfile.mkdtemp(prefix="sarloop-pystubs-")
        atexit.register(shutil.rmtree, into, ignore_errors=True)
    if not os.path.exists(os.path.join(into, "sarloop", "v1", "types_pb2.py")):
        protos = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(repo, "proto"))
                  for f in fs if f.endswith(".proto")]
        subprocess.run(["protoc", f"-I{repo}/proto", "-I/usr/include", f"--python_out={into}",
                        f"--grpc_python_out={into}", "--plugin=protoc-gen-grpc_python="
                        "/usr/bin/grpc_python_plugin"] + protos, check=True)
    sys.path.insert(0, into)
    ns = types.SimpleNamespace(dir=into)
    for name in ("types", "ukfiu", "force", "racu", "nca"):
        setattr(ns, f"{name}_pb2", importlib.import_module(f"sarloop.v1.{name}_pb2"))
        if name != "types":
            setattr(ns, f"{name}_grpc", importlib.import_module(f"sarloop.v1.{name}_pb2_grpc"))
    ns.status_pb2 = importlib.import_module("google.rpc.status_pb2")
    ns.error_details_pb2 = importlib.import_module("google.rpc.error_details_pb2")
    return ns


def channel(pki, identity, port, options=None):
    """An mTLS channel as `identity` (a directory of the PKI: key.pem, cert.pem, ca.pem), with
    gRPC channel `options` if given."""
    def read(name):
        with open(os.path.join(pki, identity, name), "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=read("ca.pem"),
                                         private_key=read("key.pem"),
                                         certificate_chain=read("cert.pem"))
    return grpc.secure_channel(f"localhost:{port}", creds, options=options)


def meta(user):
    """Every call names the person acting (x-sarloop-user), for the audit log."""
    return (("x-sarloop-user", user),)
