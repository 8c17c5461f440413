#!/usr/bin/python3
"""Why a chain's threads sleep: every voluntary context switch, by thread and by what it waited in.

sarloop-bench counts the services' voluntary context switches (each a sleep and a wake-up); this
says what each one was. It records the scheduler's switch events with their stacks (perf, from
Debian's linux-perf) for every thread of every service of a local chain while sarloop-bench runs
against it, keeps the benchmark's last phase (the chain at its light load), and sorts each sleep
by thread name and cause: the system call it slept in and, for a sync, the part of it that waited
(the data pages' writeback, the inode's write, the disk's cache flush, the journal).

  /usr/bin/python3 tools/bench/wakeups.py --chain DIR [--seconds S] [--bench PATH] [-- FLAGS]
  /usr/bin/python3 tools/bench/wakeups.py --script FILE --per N    # a saved 'perf script' output

Run as root (the scheduler's trace points). With --chain, per lifecycle: the events of the
light-load phase's middle (its first and last half second left out) divided by the lifecycles
the benchmark started in that window; FLAGS after '--' go to sarloop-bench (--low-rate,
--concurrency, --lifecycles). With --script, the whole file divided by N. Prints a table
of causes per thread, most first, and the total.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HEADER = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+([\d.]+):\s.*prev_state=(\S+)")

# The kernel function a sleep inside a sync passed through, and what it means.
SYNC_PARTS = [
    ("__sync_dirty_buffer", "inode written"),
    ("ext4_write_inode", "inode written"),
    ("jbd2", "journal commit"),
    ("blkdev_issue_flush", "disk cache flush"),
    ("folio_wait_writeback", "data pages written"),
    ("__filemap_fdatawait_range", "data pages written"),
]


def cause(frames):
    """frames: the stack, innermost first, as 'symbol (object)' strings."""
    syscall = next((f.split()[0] for f in frames if f.startswith("__x64_sys_")), None)
    if syscall is None:
        return "preempted in the kernel" if frames else "unknown"
    name = syscall[len("__x64_sys_"):]
    if name in ("fdatasync", "fsync"):
        part = next((what for sym, what in SYNC_PARTS for f in frames if sym in f), "other")
        return f"{name}: {part}"
    if name == "futex":
        # Which waiter made the call tells whose lock or condition it was; the frame-pointer
        # stacks of Debian's libraries stop at it.
        user = " ".join(f for f in frames if "kernel.kallsyms" not in f)
        if "lll_lock_wait" in user:
            return "futex: a contended mutex"
        if "__futex_abstimed_wait" in user or "pthread_cond" in user:
            return "futex: a pthread condition variable (std::condition_variable)"
        if user.startswith("syscall") or "Waiter::Wait" in user or "gpr_cv_wait" in user:
            return "futex: abseil's waiter (gRPC's condition variables, absl::Mutex)"
        return "futex: other"
    return name


def parse(lines, window=None):
    """Counts (thread, cause) over perf script's blocks; window: (from, to) in trace seconds."""
    counts = collections.Counter()
    block = []

    def flush():
        if not block:
            return
        m = HEADER.match(block[0])
        if m:
            thread, t, state = m.group(1), float(m.group(3)), m.group(4)
            if state[0] in "SD" and (window is None or window[0] <= t <= window[1]):
                frames = [l.strip().split(None, 1)[1] for l in block[1:]
                          if len(l.strip().split(None, 1)) == 2]
                counts[(thread, cause(frames))] += 1
        block.clear()

    for line in lines:
        if line.strip():
            block.append(line.rstrip("\n"))
        else:
            flush()
    flush()
    return counts


def times(lines):
    first = last = None
    for line in lines:
        m = HEADER.match(line)
        if m:
            t = float(m.group(3))
            first = t if first is None else first
            last = t
    return first, last


def report(counts, per, label):
    by_thread = collections.Counter()
    for (thread, _), n in counts.items():
        by_thread[thread] += n
    total = sum(counts.values())
    print(f"voluntary context switches per {label} (each a sleep and a wake-up), by thread and "
          f"what it slept in:")
    print(f"{'thread':18s} {'cause':66s} {'per ' + label:>14s}")
    for thread, n in by_thread.most_common():
        rows = sorted(((c, k) for (t, k), c in counts.items() if t == thread), reverse=True)
        for i, (c, k) in enumerate(rows):
            print(f"{thread if i == 0 else '':18s} {k:66s} {c / per:14.1f}")
        print(f"{'':18s} {'(all)':66s} {n / per:14.1f}")
    print(f"{'total':18s} {'':66s} {total / per:14.1f}")


def perf_script(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,time,trace,ip,sym,dso"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"wakeups: perf script: {out.stderr.strip()}")
    return out.stdout.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chain", help="a running local chain (deploy/local/sarloop-local up DIR)")
    parser.add_argument("--seconds", type=float, default=5, help="sarloop-bench's --seconds")
    parser.add_argument("--bench", help="sarloop-bench (default: build/tools/bench/)")
    parser.add_argument("--script", help="a saved 'perf script' output, instead of --chain")
    parser.add_argument("--per", type=float, default=0, help="with --script: divide by this")
    parser.add_argument("bench_flags", nargs="*", help="after '--': more sarloop-bench flags")
    args = parser.parse_args()

    if args.script:
        if args.per <= 0:
            sys.exit("wakeups: --script needs --per N (what to count the switches per)")
        try:
            with open(args.script) as f:
                lines = f.read().splitlines()
        except OSError as e:
            sys.exit(f"wakeups: {e}")
        report(parse(lines), args.per, "unit")
        return
    if not args.chain:
        sys.exit("wakeups: --chain DIR or --script FILE is required")
    if args.seconds < 2:
        sys.exit("wakeups: --seconds must be at least 2 (the window leaves out a second)")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    bench = args.bench or os.path.join(repo, "build/tools/bench/sarloop-bench")
    run = os.path.join(args.chain, "run")
    try:
        pids = [open(os.path.join(run, f)).read().strip() for f in sorted(os.listdir(run))
                if f.endswith(".pid")]
    except OSError as e:
        sys.exit(f"wakeups: {args.chain} is not a running local chain: {e}")
    if not pids or not all(os.path.isdir(f"/proc/{p}") for p in pids):
        sys.exit(f"wakeups: {args.chain} is not a running local chain (a service is not running; "
                 "deploy/local/sarloop-local up DIR)")
    with tempfile.TemporaryDirectory(prefix="sarloop-wakeups-") as work:
        data, js = os.path.join(work, "perf.data"), os.path.join(work, "bench.json")
        cmd = ["perf", "record", "-q", "-e", "sched:sched_switch", "-g", "-p", ",".join(pids),
               "-o", data, "--", bench, "--chain", args.chain, "--seconds", str(args.seconds),
               "--json", js] + args.bench_flags
        if shutil.which("perf") is None:
            sys.exit("wakeups: perf is not installed (Debian's linux-perf: "
                     "deploy/install-deps.sh --tests installs it)")
        if not os.access(bench, os.X_OK):
            sys.exit(f"wakeups: {bench} is not built (or pass --bench)")
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            sys.exit(f"wakeups: perf record or sarloop-bench failed (exit {rc})")
        with open(js) as f:
            rate = json.load(f)["low_load_rate"]
        lines = perf_script(data)
    first, last = times(lines)
    if first is None:
        sys.exit("wakeups: the recording holds no switch events")
    # The light-load phase is the benchmark's last; what follows it (snapshots, printing) is short.
    window = (last - args.seconds + 0.5, last - 0.5)
    lifecycles = rate * (window[1] - window[0])
    print(f"\nthe light-load phase at {rate:g}/s: {window[1] - window[0]:.1f} s, "
          f"{lifecycles:.0f} lifecycles started\n")
    report(parse(lines, window), lifecycles, "lifecycle")


if __name__ == "__main__":
    main()
