#!/usr/bin/python3
"""The fault suite's harness: a load driver and a chaos driver against the real chain.

Starts the whole chain on loopback (deploy/local/sarloop-local, mTLS) from the services' test
builds, drives a synthetic scenario through every hop and every decision path (sarloop-synth,
which retries a failed call with the same request_id), and meanwhile breaks things:

  --mode kill          SIGKILLs a random service at random moments and restarts it;
  --mode crash-points  lets the services kill themselves at the named crash points (fault
                       injector, tests/fault/fault_injector.cc) and restarts them.

With --nca-postgres the NCA register lives on PostgreSQL (the server tests/pg/with_postgres.sh
starts, found in SARLOOP_TEST_POSTGRES) and two nca replicas share it, every sender reaching
both through one address list; --kill-only nca,nca-2 then kills one replica at a time under load.
The checks add: the register holds each event delivered to the NCA exactly once, both replicas
answer the analysts alike, and the shared audit chain verifies against each replica's checkpoints.

Delivered batches are also sent twice, with an old batch replayed (--duplicate-percent). At the
end it checks: the register equals the scenario referral by referral, exactly once (sarloop-synth's
own check); no outbox holds a pending message and none was refused permanently; every receiver
applied each message delivered to it once (its inbox_seen rows equal the senders' delivered
outbox rows); every service's audit chain verifies. Every run prints its seed; the same seed
replays the same scenario and the same kill schedule.

Coverage is reached by construction, not by chance: the run goes on in rounds (a further
scenario on the same chain, seed + round) until it has made --min-kills kills, or until every
crash point has fired --min-kills times, and --min-referrals referrals. In crash-points mode the
harness steers the injector through a control file (SARLOOP_CRASH_CONTROL): a point that has
fired often enough is disarmed, and a point still short in a later round gets a higher chance.
A run that cannot get there within --coverage-timeout seconds fails, naming what fell short.

  tests/fault/chaos.py BUILD_DIR                        # CI size: >= 10,000 referrals, >= 100 kills
  tests/fault/chaos.py BUILD_DIR --soak                 # soak: >= 100,000 referrals, >= 1,000 kills
  tests/fault/chaos.py BUILD_DIR --mode crash-points    # every crash point, many times
"""

import argparse
import collections
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = os.path.join(REPO, "deploy", "local", "sarloop-local")
SERVICES = ["ukfiu", "nca", "force-NFK", "force-SFK", "force-MPS", "force-BF",
            "racu-ERSOU", "racu-NCAACU"]
# Crash points and their chance per thousand of killing the process when reached. The frequent
# points (every transaction, every reply) get small chances, the rare ones larger, so that each
# fires many times in a CI-size run.
CRASH_POINTS = {
    "rpc.before_reply": 6,
    "storage.before_commit": 2,
    "storage.after_commit": 2,
    "outbox.after_send": 40,
    "receive.after_dedup": 8,
    "receive.mid_batch": 15,
}


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {what}", flush=True)


def pid_of(chain, name):
    try:
        with open(os.path.join(chain, "run", f"{name}.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def alive(pid):
    """Whether any thread of pid still runs (a zombie main thread is not the end: another thread
    may still be finishing an fsync with the process's port and files open)."""
    if pid is None:
        return False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    return True
        except OSError:
            pass
    return False


def ours(pid, chain):
    """Whether pid is a process of this chain: its command line names the chain's directory. A
    service that died leaves its pid file behind, and on a busy machine the pid may already belong
    to another process (another chain's service, another test): never signal that one."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:  # a zombie main thread's command line is empty; a live thread's is not
        try:
            with open(f"/proc/{pid}/task/{tid}/cmdline", "rb") as f:
                if os.path.abspath(chain).encode() in f.read():
                    return True
        except OSError:
            pass
    return False


def service_alive(chain, name):
    pid = pid_of(chain, name)
    return alive(pid) and ours(pid, chain)


def start(chain, name, env):
    for attempt in range(20):
        r = subprocess.run([LOCAL, "start", name, chain], env=env, capture_output=True, text=True)
        if r.returncode == 0:
            return True
        time.sleep(0.2)
    print(f"could not restart {name}:\n{r.stdout}{r.stderr}", flush=True)
    return False


def pending_and_rejected(chain):
    pending = rejected = 0
    for db in sorted(os.listdir(os.path.join(chain, "data"))):
        if not db.endswith(".db"):
            continue
        con = sqlite3.connect(f"file:{os.path.join(chain, 'data', db)}?mode=ro", uri=True,
                              timeout=10)
        try:
            p, r = con.execute("SELECT COALESCE(SUM(status = 0), 0), COALESCE(SUM(status = 2), 0) "
                               "FROM outbox").fetchone()
        finally:
            con.close()
        pending += p
        rejected += r
    return pending, rejected


def read_db(path, sql):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# The data file of each organisation code's service in the chain (sarloop-local's names).
def code_of(db_name):
    name = db_name[:-3]
    if name.startswith("nca"):
        return "NCA"  # nca, and the replicas nca-2, nca-3
    return name.split("-", 1)[1] if "-" in name else name.upper()


def check_applied_once(chain, checks, skip=()):
    """Every message a sender marked delivered to a receiver is in that receiver's inbox_seen once,
    and the receiver holds nothing it was not sent: a message applied twice, or applied without
    its sender knowing, shows as a difference."""
    data = os.path.join(chain, "data")
    dbs = [d for d in sorted(os.listdir(data)) if d.endswith(".db")]
    delivered = collections.Counter()
    for db in dbs:
        for dest, n in read_db(os.path.join(data, db),
                               "SELECT destination, COUNT(*) FROM outbox WHERE status = 1 "
                               "GROUP BY destination"):
            delivered[dest] += n
    for db in dbs:
        code = code_of(db)
        if code in skip:
            continue
        seen = read_db(os.path.join(data, db), "SELECT COUNT(*) FROM inbox_seen")[0][0]
        checks.check(seen == delivered[code],
                     f"{code} applied each of the {delivered[code]} messages delivered to it once "
                     f"(expected {delivered[code]} in inbox_seen, saw {seen})")


class CrashTally:
    """Counts the injector's crashes per point by reading only what each log gained."""

    def __init__(self, chain):
        self.logs = os.path.join(chain, "logs")
        self.offsets = {}
        self.counts = collections.Counter()

    def update(self):
        for log in os.listdir(self.logs):
            path = os.path.join(self.logs, log)
            with open(path, "rb") as f:
                f.seek(self.offsets.get(log, 0))
                data = f.read()
            # Count whole lines only; a partial last line is read again next time.
            end = data.rfind(b"\n") + 1
            self.offsets[log] = self.offsets.get(log, 0) + end
            for point in re.findall(rb"fault injector: crash at (\S+)", data[:end]):
                self.counts[point.decode()] += 1
        return self.counts


def write_control(path, chances):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(f"{p}:{c}" for p, c in chances.items()) + "\n")
    os.replace(tmp, path)


def psql(postgres, sql):
    r = subprocess.run(["psql", postgres, "-tAc", sql], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def check_replicas(chain, build, env, postgres, checks):
    """The register on PostgreSQL: every event delivered to the NCA applied once; both replicas
    give the analysts the same answers."""
    delivered = 0
    for db in sorted(os.listdir(os.path.join(chain, "data"))):
        if db.endswith(".db"):
            con = sqlite3.connect(f"file:{os.path.join(chain, 'data', db)}?mode=ro", uri=True,
                                  timeout=10)
            try:
                delivered += con.execute("SELECT COUNT(*) FROM outbox WHERE destination = 'NCA' "
                                         "AND status = 1").fetchone()[0]
            finally:
                con.close()
    events = int(psql(postgres, "SELECT COUNT(*) FROM events"))
    entries = int(psql(postgres, "SELECT COUNT(*) FROM entries"))
    seen = int(psql(postgres, "SELECT COUNT(*) FROM inbox_seen"))
    held = int(psql(postgres, "SELECT COUNT(*) FROM held_events"))
    checks.check(held == 0, f"the register judged every event it kept aside "
                            f"(expected 0 still held, saw {held})")
    checks.check(events == delivered and seen == delivered,
                 f"the register holds each of the {delivered} events delivered to the NCA once "
                 f"({events} events, {seen} message ids seen, {entries} referrals)")
    ctl = os.path.join(build, "tools", "sarloopctl")
    answers = []
    for name, offset in (("nca", 2), ("nca-2", 4)):
        r = subprocess.run([ctl, "nca", "summary",
                            f"--target=localhost:{int(env['SARLOOP_BASE_PORT']) + offset}",
                            f"--identity={os.path.join(chain, 'pki', 'analyst-alice')}",
                            "--as-of", "2030-01-01"],
                           capture_output=True, text=True)
        answers.append(r.stdout if r.returncode == 0 else f"exit {r.returncode}: {r.stderr}")
    checks.check(answers[0] == answers[1] and f"{entries}" in answers[0],
                 f"both replicas answer the summary alike, counting all {entries} referrals")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("build", help="the build tree (holds tests/fault/sarloop-*-faults)")
    ap.add_argument("--mode", choices=["kill", "crash-points"], default="kill")
    ap.add_argument("--sars", type=int, help="SARs to submit (about 30%% become referrals)")
    ap.add_argument("--min-referrals", type=int)
    ap.add_argument("--min-kills", type=int)
    ap.add_argument("--soak", action="store_true", help="10 times the CI size")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--duplicate-percent", type=int, default=15)
    # 0.5 s: with group commit the scenario runs in about 250 s on 2 cores, and the run must fit
    # its 100 kills in that time.
    ap.add_argument("--mean-interval", type=float, default=0.5,
                    help="mean seconds between kills (--mode kill)")
    ap.add_argument("--base-port", default="auto",
                    help="the chain's base port (default: a free block, see sarloop-local)")
    ap.add_argument("--coverage-timeout", type=int, default=900,
                    help="seconds of rounds to reach the kills or crashes asked for")
    ap.add_argument("--settle-timeout", type=int, default=900,
                    help="seconds sarloop-synth waits for the chain to settle after each phase")
    ap.add_argument("--keep", action="store_true", help="keep the chain directory")
    ap.add_argument("--nca-postgres", action="store_true",
                    help="the register on PostgreSQL ($SARLOOP_TEST_POSTGRES) with two nca replicas")
    ap.add_argument("--kill-only", default="",
                    help="comma-separated services to kill (default: any)")
    ap.add_argument("--unsafe", default="",
                    help="unsafe modes for the services (sync_normal, ack_before_commit): the "
                         "run must then fail, which shows the checks have teeth")
    a = ap.parse_args()

    scale = 10 if a.soak else 1
    if a.mode == "kill":
        sars = a.sars or 34000 * scale
        min_referrals = a.min_referrals if a.min_referrals is not None else 10000 * scale
        min_kills = a.min_kills if a.min_kills is not None else 100 * scale
    else:
        sars = a.sars or 6000 * scale
        min_referrals = a.min_referrals if a.min_referrals is not None else 1500 * scale
        min_kills = a.min_kills if a.min_kills is not None else 3 * scale  # per crash point
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(seed)
    build = os.path.abspath(a.build)
    print(f"chaos: mode {a.mode}, seed {seed}, {sars} SARs, duplicates {a.duplicate_percent}% "
          f"(rerun: {sys.argv[0]} {a.build} --mode {a.mode} --seed {seed}"
          f"{' --soak' if a.soak else ''})", flush=True)

    chain = tempfile.mkdtemp(prefix="sarloop-chaos-")
    env = dict(os.environ, SARLOOP_BUILD=build, SARLOOP_BASE_PORT=str(a.base_port),
               SARLOOP_FAULTS="1", SARLOOP_DUPLICATE_PERCENT=str(a.duplicate_percent),
               SARLOOP_CRASH_SEED=str(seed))
    services = list(SERVICES)
    postgres = None
    if a.nca_postgres:
        admin = os.environ.get("SARLOOP_TEST_POSTGRES")
        if not admin:
            print("chaos: --nca-postgres needs SARLOOP_TEST_POSTGRES (run under "
                  "tests/pg/with_postgres.sh)", flush=True)
            sys.exit(2)
        name = f"sarloop_chaos_{seed}"
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
        postgres = f"{admin} dbname={name}"
        env.update(SARLOOP_NCA_POSTGRES=postgres, SARLOOP_NCA_REPLICAS="2")
        services.append("nca-2")
    victims = a.kill_only.split(",") if a.kill_only else services
    if a.unsafe:
        env["SARLOOP_UNSAFE"] = a.unsafe
    control = os.path.join(chain, "crash-control")
    if a.mode == "crash-points":
        env["SARLOOP_CRASH_POINTS"] = ",".join(f"{p}:{c}" for p, c in CRASH_POINTS.items())
        env["SARLOOP_CRASH_CONTROL"] = control
        write_control(control, CRASH_POINTS)
    checks = Checks()
    t0 = time.time()
    try:
        r = subprocess.run([LOCAL, "up", chain], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(r.stdout, r.stderr)
            checks.check(False, "the chain starts")
            return checks
        with open(os.path.join(chain, "base-port")) as f:
            env["SARLOOP_BASE_PORT"] = f.read().strip()
        kills = restarts = referrals = 0
        tally = CrashTally(chain)
        chances = dict(CRASH_POINTS)

        def short_points():
            counts = tally.update()
            return [p for p in CRASH_POINTS if counts[p] < min_kills]

        def covered():
            if a.mode == "kill":
                return kills >= min_kills
            return not short_points()

        next_kill = time.time() + rng.expovariate(1 / a.mean_interval)
        coverage_deadline = time.time() + a.coverage_timeout
        synth_ok = True
        rounds = 0
        for round_no in range(1000):
            if round_no > 0:
                if covered() and referrals >= min_referrals:
                    break
                if time.time() > coverage_deadline:
                    break
                if a.mode == "crash-points":
                    # A point still short fires more readily in the next round.
                    for p in short_points():
                        chances[p] = min(chances[p] * 2, 300)
                    write_control(control, {p: (c if p in short_points() else 0)
                                            for p, c in chances.items()})
            round_sars = sars if round_no == 0 else max(sars // 3, 500)
            synth_log = open(os.path.join(chain, f"synth-{round_no}.log"), "w")
            synth = subprocess.Popen(
                [os.path.join(build, "tools", "synth", "sarloop-synth"), "--pki",
                 os.path.join(chain, "pki"), "--sars", str(round_sars), "--seed",
                 str(seed + round_no), "--patience", "300", "--timeout", str(a.settle_timeout),
                 "--threads", "8"],
                stdout=synth_log, stderr=subprocess.STDOUT, env=env)
            last_tally = 0
            while synth.poll() is None:
                for name in services:
                    if not service_alive(chain, name):
                        restarts += 1
                        start(chain, name, env)
                if a.mode == "kill" and time.time() >= next_kill:
                    name = rng.choice(victims)
                    pid = pid_of(chain, name)
                    if alive(pid) and ours(pid, chain):
                        os.kill(pid, signal.SIGKILL)
                        while alive(pid):
                            time.sleep(0.01)
                        kills += 1
                        time.sleep(rng.uniform(0, 0.3))
                        start(chain, name, env)
                    next_kill = time.time() + rng.expovariate(1 / a.mean_interval)
                if a.mode == "crash-points" and time.time() - last_tally >= 1:
                    # A point that has fired often enough is disarmed, so the others get the
                    # run's remaining time.
                    last_tally = time.time()
                    short = short_points()
                    armed = {p: (c if p in short else 0) for p, c in chances.items()}
                    write_control(control, armed)
                time.sleep(0.05)
            synth_log.close()
            with open(os.path.join(chain, f"synth-{round_no}.log")) as f:
                synth_out = f.read()
            print(f"--- sarloop-synth round {round_no} (seed {seed + round_no}, tail) ---\n" +
                  "\n".join(synth_out.splitlines()[-12:]), flush=True)
            m = re.search(r"SARs \(\d+ subjects\), (\d+) referrals", synth_out)
            referrals += int(m.group(1)) if m else 0
            rounds += 1
            if synth.returncode != 0:
                synth_ok = False
                break
            if a.unsafe:
                break
        if a.mode == "crash-points":
            write_control(control, {p: 0 for p in CRASH_POINTS})
        if a.unsafe:
            # The services were told to break the durability contract: the run must notice.
            checks.check(not synth_ok,
                         f"with {a.unsafe} an acknowledged step is lost and the checks say so "
                         f"(sarloop-synth exit {synth.returncode})")
            return checks
        checks.check(synth_ok,
                     f"the register equals the scenario, every referral exactly once, in each of "
                     f"{rounds} round(s) (sarloop-synth exit "
                     f"{synth.returncode})")
        checks.check(referrals >= min_referrals,
                     f"{referrals} referrals (at least {min_referrals})")

        # The crash points stay armed while the outboxes drain: a service that crashes now must be
        # restarted too, or its outbox would wait for it forever.
        deadline = time.time() + 120
        while True:
            for name in services:
                if not service_alive(chain, name):
                    restarts += 1
                    start(chain, name, env)
            pending, rejected = pending_and_rejected(chain)
            if pending == 0 or time.time() > deadline:
                break
            time.sleep(0.5)
        checks.check(pending == 0, f"no outbox holds a pending message (expected 0, saw {pending})")
        checks.check(rejected == 0, f"no message was refused permanently by its receiver "
                                    f"(expected 0, saw {rejected})")
        # The register on PostgreSQL keeps its inbox_seen there (check_replicas counts it).
        check_applied_once(chain, checks, skip=("NCA",) if postgres else ())
        if postgres:
            check_replicas(chain, build, env, postgres, checks)
        subprocess.run([LOCAL, "down", chain], env=env, capture_output=True)

        crashes = tally.update()
        resent = repeated = 0
        for log in os.listdir(os.path.join(chain, "logs")):
            with open(os.path.join(chain, "logs", log), errors="replace") as f:
                text = f.read()
            resent += len(re.findall(r"fault injection: sending a batch", text))
            # The referral layer logs an event that arrives again in a new message: receivers
            # deduplicate by message, so that only happens when a message was applied twice.
            repeated += len(re.findall(r"arrived again in a new message", text))
        checks.check(repeated == 0, f"no event was delivered again in a new message "
                                    f"(expected 0, saw {repeated})")
        held = 0
        for db in sorted(os.listdir(os.path.join(chain, "data"))):
            if db.endswith(".db") and not (postgres and db.startswith("nca")):
                held += read_db(os.path.join(chain, "data", db),
                                "SELECT COUNT(*) FROM held_events")[0][0] \
                    if read_db(os.path.join(chain, "data", db),
                               "SELECT COUNT(*) FROM sqlite_master WHERE name = 'held_events'")[0][0] \
                    else 0
        checks.check(held == 0, f"every event kept aside until its referral was known was judged "
                                f"(expected 0 still held, saw {held})")
        checks.check(a.duplicate_percent == 0 or resent > 0,
                     f"{resent} delivered batches sent twice, each with an older one replayed")
        if a.mode == "kill":
            checks.check(kills >= min_kills,
                         f"{kills} SIGKILLs survived (at least {min_kills}; "
                         f"{rounds} round(s), coverage timeout {a.coverage_timeout} s)")
        else:
            for point in CRASH_POINTS:
                checks.check(crashes[point] >= min_kills,
                             f"crash point {point}: {crashes[point]} crashes survived "
                             f"(at least {min_kills}; chance reached {chances[point]}/1000 in "
                             f"{rounds} round(s), coverage timeout {a.coverage_timeout} s)")
        ctl = os.path.join(build, "tools", "sarloopctl")
        for db in sorted(os.listdir(os.path.join(chain, "data"))):
            if db.endswith(".db"):
                r = subprocess.run([ctl, "audit", "verify", "--database",
                                    os.path.join(chain, "data", db)], capture_output=True, text=True)
                checks.check(r.returncode == 0,
                             f"audit chain of {db[:-3]} verifies: {(r.stdout + r.stderr).strip()}")
        if postgres:
            for name in ("nca", "nca-2"):
                r = subprocess.run([ctl, "audit", "verify", "--postgres", postgres, "--database",
                                    os.path.join(chain, "data", f"{name}.db")],
                                   capture_output=True, text=True)
                checks.check(r.returncode == 0,
                             f"the register's audit chain (PostgreSQL) verifies against {name}'s "
                             f"checkpoints: {(r.stdout + r.stderr).strip()}")
        print(f"chaos: {kills} kills, {sum(crashes.values())} crash-point crashes, {restarts} "
              f"restarts of crashed services, {referrals} referrals, {time.time() - t0:.0f} s, "
              f"seed {seed}", flush=True)
    finally:
        subprocess.run([LOCAL, "down", chain], env=env, capture_output=True)
        if a.keep or checks.failed:
            print(f"chain kept in {chain}")
        else:
            shutil.rmtree(chain, ignore_errors=True)
    return checks


if __name__ == "__main__":
    result = main()
    print(f"{result.passed} passed, {result.failed} failed")
    sys.exit(0 if result.failed == 0 else 1)
