#!/usr/bin/python3
"""Which B-trees a service's commits write, from an strace of its WAL writes.

SQLite writes each WAL frame as a 24-byte header (page number, then the database size after the
commit, non-zero only on a commit's last frame) followed by the page. Given an strace of a running
service's pwrite64 calls and its database file, this counts the frames of each commit and names
the table or index of each page (SQLite's dbstat table), so a schema change can be judged by the
pages a commit writes.

  strace -f -tt -xx -s 8 -e trace=pwrite64 -p PID -o FILE     # while the load runs
  /usr/bin/python3 tools/bench/wal_pages.py --db DIR/data/force-NFK.db --strace FILE [--last S]

--last keeps the commits of the last S seconds of the trace (sarloop-bench's light-load phase is
the last). Prints commits, frames per commit and, per B-tree, frames per commit.
"""
import argparse
import collections
import re
import sqlite3
import sys

FRAME_HEADER = re.compile(
    r'^\d+ +(\d+):(\d+):([\d.]+) pwrite64\(\d+, "((?:\\x[0-9a-f]{2})+)"\.*, 24, \d+\) = 24')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the service's SQLite database")
    parser.add_argument("--strace", required=True, help="strace -tt -xx output (see above)")
    parser.add_argument("--last", type=float, default=0, help="only the last S seconds")
    args = parser.parse_args()

    try:
        con = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
        owner = dict((page, name) for name, page in con.execute("SELECT name, pageno FROM dbstat"))
    except sqlite3.Error as e:
        sys.exit(f"wal_pages: {args.db}: {e}")

    commits, frames = [], []
    try:
        trace = open(args.strace)
    except OSError as e:
        sys.exit(f"wal_pages: {e}")
    with trace:
        for line in trace:
            m = FRAME_HEADER.match(line)
            if not m:
                continue
            header = bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", m.group(4)))
            if len(header) < 8:
                continue
            frames.append(int.from_bytes(header[0:4], "big"))
            if int.from_bytes(header[4:8], "big"):  # the commit's last frame
                at = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
                commits.append((at, frames))
                frames = []
    if not commits:
        sys.exit("wal_pages: no WAL commits in the trace (was it taken with -xx -s 8?)")
    if args.last > 0:
        end = commits[-1][0]
        commits = [c for c in commits if c[0] > end - args.last]
    per_tree = collections.Counter()
    for _, pages in commits:
        for page in pages:
            per_tree[owner.get(page, "(freed or new since)")] += 1
    n = len(commits)
    total = sum(len(p) for _, p in commits)
    print(f"{n} commits, {total / n:.1f} frames per commit")
    for name, count in per_tree.most_common():
        print(f"  {name:<34} {count / n:.2f}")


if __name__ == "__main__":
    main()
