#!/usr/bin/python3
"""Which B-trees a service's commits write, from an strace of its WAL writes or from its WAL.

SQLite writes each WAL frame as a 24-byte header (page number, then the database size after the
commit, non-zero only on a commit's last frame) followed by the page. Given an strace of a running
service's pwrite64 calls and its database file, this counts the frames of each commit and names
the table or index of each page (SQLite's dbstat table), so a schema change can be judged by the
pages a commit writes.

  strace -f -tt -xx -s 8 -e trace=pwrite64 -p PID -o FILE     # while the load runs
  /usr/bin/python3 tools/bench/wal_pages.py --db DIR/data/force-NFK.db --strace FILE [--last S]

--last keeps the commits of the last S seconds of the trace (sarloop-bench's light-load phase is
the last). Prints commits, frames per commit and, per B-tree, frames per commit.

The services write a commit's frames in runs (common/storage/storage_wal_vfs.h), which such a trace does
not show one by one. --wal reads the frames from the database's WAL file instead: the commits of
its current generation (since the WAL last started again from its beginning), with no times.
Copy the database and its WAL while the service is quiet, or stopped without a last checkpoint:

  /usr/bin/python3 tools/bench/wal_pages.py --db COPY/force-NFK.db --wal
"""
import argparse
import collections
import os
import re
import shutil
import sqlite3
import sys
import tempfile

FRAME_HEADER = re.compile(
    r'^\d+ +(\d+):(\d+):([\d.]+) pwrite64\(\d+, "((?:\\x[0-9a-f]{2})+)"\.*, 24, \d+\) = 24')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the service's SQLite database")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--strace", help="strace -tt -xx output (see above)")
    source.add_argument("--wal", action="store_true", help="read the frames from DB-wal")
    parser.add_argument("--last", type=float, default=0, help="only the last S seconds")
    args = parser.parse_args()

    if args.wal:
        if args.last > 0:
            sys.exit("wal_pages: --last needs --strace (a WAL's frames carry no times)")
        commits = wal_commits(args.db)
        owner = owners(args.db, with_wal=True)
    else:
        owner = owners(args.db, with_wal=False)
        commits = trace_commits(args.strace)
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


def owners(db, with_wal):
    """Page number -> the table or index that owns it (as of the WAL's last commit, with_wal)."""
    work = tempfile.mkdtemp(prefix="wal-pages-")
    try:
        if with_wal:
            # A copy, so that reading it neither needs the service's shared memory nor changes it.
            shutil.copy(db, os.path.join(work, "db"))
            shutil.copy(db + "-wal", os.path.join(work, "db-wal"))
            con = sqlite3.connect(os.path.join(work, "db"))
        else:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        with con:
            return dict((page, name) for name, page in con.execute("SELECT name, pageno FROM dbstat"))
    except (OSError, sqlite3.Error) as e:
        sys.exit(f"wal_pages: {db}: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def wal_commits(db):
    """The commits of the WAL's current generation: the frames whose salts are the header's."""
    try:
        with open(db + "-wal", "rb") as f:
            wal = f.read()
    except OSError as e:
        sys.exit(f"wal_pages: {e}")
    if len(wal) < 32 or int.from_bytes(wal[0:4], "big") not in (0x377F0682, 0x377F0683):
        sys.exit(f"wal_pages: {db}-wal is not a WAL file")
    page_size = int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    commits, frames, at = [], [], 32
    while at + 24 + page_size <= len(wal) and wal[at + 8:at + 16] == salts:
        frames.append(int.from_bytes(wal[at:at + 4], "big"))
        if int.from_bytes(wal[at + 4:at + 8], "big"):  # the commit's last frame
            commits.append((0, frames))
            frames = []
        at += 24 + page_size
    if not commits:
        sys.exit(f"wal_pages: no commits in {db}-wal")
    return commits


def trace_commits(path):
    commits, frames = [], []
    try:
        trace = open(path)
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
    return commits


if __name__ == "__main__":
    main()
