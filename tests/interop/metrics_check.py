#!/usr/bin/python3
"""Scrapes every service's Prometheus endpoint as Prometheus would, and checks what it says.

Run after workflow_client.py against the same chain, so the counts it checks are known to have
happened: NFK acknowledged (once retried), refused a bad request and an early handover, handed one
referral over and closed another; ERSOU recorded an outcome; the NCA register holds both.

The exposition text is parsed strictly (format 0.0.4): HELP and TYPE before a family's samples,
every sample line `name{labels} value`, histogram buckets cumulative and ending at +Inf equal to
_count. Only a monitoring identity may read it: no certificate is 401, a force's is 403; and the
monitoring identity cannot call a sarloop gRPC method.

Usage: metrics_check.py PKI_DIR BASE_PORT. Prints 'N passed, N failed'.
"""
import http.client
import re
import ssl
import sys

import grpc

from checks import check, finish

PKI, BASE = sys.argv[1], int(sys.argv[2])
# Each service's gRPC port offset; its metrics endpoint is at that port + 24 (sarloop-local).
SERVICES = {"ukfiu": 1, "nca": 2, "force-NFK": 11, "force-SFK": 12, "force-MPS": 13,
            "force-BF": 14, "racu-ERSOU": 21, "racu-NCAACU": 22}



def scrape(offset, identity):
    ctx = ssl.create_default_context(cafile=f"{PKI}/ca/ca.pem")
    ctx.check_hostname = False  # the services' certificates name SPIFFE URIs, not hosts
    if identity:
        ctx.load_cert_chain(f"{PKI}/{identity}/cert.pem", f"{PKI}/{identity}/key.pem")
    conn = http.client.HTTPSConnection("127.0.0.1", BASE + offset + 24, context=ctx, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    return response.status, response.getheader("Content-Type", ""), response.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse(text):
    """{(name, frozenset(labels)): value}, and the problems found."""
    samples, types, problems = {}, {}, []
    helped = set()
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if name not in helped:
                problems.append(f"line {n}: TYPE {name} before its HELP")
            if name in types:
                problems.append(f"line {n}: family {name} declared twice")
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"line {n}: not a sample: {line!r}")
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if family not in types:
            problems.append(f"line {n}: {name} has no TYPE")
        parsed = LABEL.findall(labels)
        if labels and ",".join(f'{k}="{v}"' for k, v in parsed) != labels:
            problems.append(f"line {n}: bad labels {labels!r}")
        try:
            samples[(name, frozenset(parsed))] = float(value)
        except ValueError:
            problems.append(f"line {n}: bad value {value!r}")
    # Histograms: cumulative buckets, +Inf equals _count.
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name == f"{family}_bucket":
                rest = frozenset(kv for kv in labels if kv[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((float("inf") if le == "+Inf" else float(le),
                                                    value))
        for rest, buckets in series.items():
            buckets.sort()
            values = [v for _, v in buckets]
            if values != sorted(values):
                problems.append(f"{family}{dict(rest)}: buckets not cumulative")
            if buckets[-1][0] != float("inf") or \
                    buckets[-1][1] != samples.get((f"{family}_count", rest)):
                problems.append(f"{family}{dict(rest)}: +Inf bucket is not _count")
    return samples, types, problems


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


scraped = {}
for service, offset in SERVICES.items():
    try:
        status, ctype, body = scrape(offset, "monitor")
    except OSError as e:
        check(f"{service}: /metrics answers the monitoring identity", False, str(e))
        continue
    samples, types, problems = parse(body)
    check(f"{service}: /metrics is valid exposition text",
          status == 200 and ctype.startswith("text/plain; version=0.0.4") and not problems,
          f"({status}, {len(samples)} samples{'; ' + '; '.join(problems[:3]) if problems else ''})")
    scraped[service] = samples
    if service not in ("ukfiu", "nca", "force-NFK", "racu-ERSOU"):
        continue  # the workflow wrote nothing there
    check(f"{service}: commits are counted with their batch sizes",
          value(samples, "sarloop_commit_duration_seconds_count") > 0 and
          value(samples, "sarloop_commit_batch_transactions_sum") >=
          value(samples, "sarloop_commit_batch_transactions_count") > 0)

nfk = scraped.get("force-NFK", {})
ack = "/sarloop.v1.Force/Acknowledge"
check("NFK: Acknowledge counted by status code (3 OK, 1 INVALID_ARGUMENT)",
      value(nfk, "sarloop_rpcs_total", method=ack, code="OK") >= 3 and
      value(nfk, "sarloop_rpcs_total", method=ack, code="INVALID_ARGUMENT") >= 1,
      f"(OK {value(nfk, 'sarloop_rpcs_total', method=ack, code='OK'):.0f})")
check("NFK: the early handover counted as FAILED_PRECONDITION",
      value(nfk, "sarloop_rpcs_total", method="/sarloop.v1.Force/HandOver",
            code="FAILED_PRECONDITION") >= 1)
total = sum(v for (n, labels), v in nfk.items()
            if n == "sarloop_rpcs_total" and ("method", ack) in labels)
check("NFK: every Acknowledge is in its latency histogram",
      value(nfk, "sarloop_rpc_duration_seconds_count", method=ack) == total, f"({total:.0f})")
check("NFK: the outbox is reported per destination",
      all(("sarloop_outbox_pending", frozenset({("destination", d)})) in nfk
          for d in ("UKFIU", "NCA", "ERSOU")))
# The handed-over referral moves on at NFK as the unit's events arrive.
unit_states = ("HANDED_OVER", "JOINT_INVESTIGATION", "OUTCOME_RECORDED")
check("NFK: referrals by state include the handed-over and the closed one",
      sum(value(nfk, "sarloop_referrals", state=s) for s in unit_states) >= 1 and
      value(nfk, "sarloop_referrals", state="CLOSED_BY_FORCE") >= 1)
nca = scraped.get("nca", {})
check("NCA: register states come from the index",
      value(nca, "sarloop_referrals", state="OUTCOME_RECORDED") >= 1 and
      value(nca, "sarloop_referrals", state="CLOSED_BY_FORCE") >= 1)
check("every service reports overdue referrals and scrape errors 0",
      all(("sarloop_referrals_overdue", frozenset()) in s and
          value(s, "sarloop_metrics_scrape_errors") == 0 for s in scraped.values()))

status, _, _ = scrape(11, None)
check("no client certificate: 401", status == 401, str(status))
status, _, _ = scrape(11, "force-NFK-psd")
check("a force's client certificate: 403", status == 403, str(status))

with open(f"{PKI}/ca/ca.pem", "rb") as ca, open(f"{PKI}/monitor/key.pem", "rb") as key, \
        open(f"{PKI}/monitor/cert.pem", "rb") as cert:
    creds = grpc.ssl_channel_credentials(ca.read(), key.read(), cert.read())
with grpc.secure_channel(f"localhost:{BASE + 11}", creds) as channel:
    try:
        channel.unary_unary("/sarloop.v1.Force/ListInbox")(b"", timeout=10)
        check("the monitoring identity cannot call the force API", False, "it could")
    except grpc.RpcError as e:
        check("the monitoring identity cannot call the force API",
              e.code() == grpc.StatusCode.PERMISSION_DENIED, str(e.code()))

finish()
