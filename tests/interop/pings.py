#!/usr/bin/python3
"""Which servers probe the link's bandwidth-delay product (common/server/server.h ProbesBandwidthDelay).

A probe is an HTTP/2 PING the server sends once data arrives, which the client must answer. A
foreign client (Debian's python3-grpcio, its own probing off) makes three health checks with
gRPC's transport trace on and counts the ping answers it writes: none for a force's server,
whose calls are small, and at least one for the linkage service's, which takes bulk uploads (the
check would otherwise pass on a client that cannot see pings at all).
Usage: pings.py PKI_DIR BASE_PORT
"""
import os
import subprocess
import sys

from checks import check, finish

PKI, BASE = sys.argv[1], int(sys.argv[2])

CLIENT = r"""
import sys, grpc
pki, port, identity = sys.argv[1], int(sys.argv[2]), sys.argv[3]
read = lambda p: open(p, "rb").read()
creds = grpc.ssl_channel_credentials(read(f"{pki}/ca/ca.pem"), read(f"{pki}/{identity}/key.pem"),
                                     read(f"{pki}/{identity}/cert.pem"))
channel = grpc.secure_channel(f"localhost:{port}", creds, options=[("grpc.http2.bdp_probe", 0)])
health = channel.unary_unary("/grpc.health.v1.Health/Check")
for _ in range(3):
    health(b"", timeout=30)
"""


def ping_answers(offset, identity):
    env = dict(os.environ, GRPC_TRACE="http", GRPC_VERBOSITY="DEBUG")
    run = subprocess.run([sys.executable, "-c", CLIENT, PKI, str(BASE + offset), identity],
                         env=env, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        return None, run.stderr[-2000:]
    return run.stderr.count("[PING_RESPONSE]"), ""


answers, err = ping_answers(11, "force-NFK-psd")
check("a force's server sends no bandwidth probe", answers == 0, f"(ping answers: {answers}) {err}")
answers, err = ping_answers(6, "ukfiu-intake")
check("the linkage service's server probes (bulk uploads)", answers is not None and answers >= 1,
      f"(ping answers: {answers}) {err}")
finish()
