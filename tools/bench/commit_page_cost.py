#!/usr/bin/python3
"""What a commit costs per page it writes, on this machine's disk and kernel.

Commits to a WAL database with synchronous=FULL (as the services run) that insert one row into each
of N tables, so each commit writes N leaf pages, and reports the process's CPU and wall time per
commit for N = 1, 10, 20, 30, twice; the slope is the cost of one more page in a commit, the
intercept that of the commit itself (BEGIN, the fdatasync, COMMIT). Keys are spread over tables of
20,000 rows each, as a service's indexes are, and the page cache holds them all.

  /usr/bin/python3 tools/bench/commit_page_cost.py [--dir DIR] [--commits N]
"""
import argparse
import itertools
import os
import resource
import shutil
import sqlite3
import tempfile
import time

TABLES = 30


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="where the database goes (default: a temporary directory)")
    parser.add_argument("--commits", type=int, default=300, help="commits per measurement")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="commit-page-cost-", dir=args.dir)
    try:
        con = sqlite3.connect(os.path.join(work, "cost.db"), isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA cache_size = -262144")
        keys = itertools.count(1)

        def key():
            return "%016x" % (next(keys) * 2654435761 % (1 << 64))  # spread, never repeated

        con.execute("BEGIN")
        for t in range(TABLES):
            con.execute(f"CREATE TABLE t{t} (k TEXT PRIMARY KEY, v BLOB)")
            con.executemany(f"INSERT INTO t{t} VALUES (?, ?)",
                            ((key(), b"x" * 200) for _ in range(20000)))
        con.execute("COMMIT")

        print("pages per commit   CPU ms per commit   wall ms per commit")
        for tables in (1, 10, 20, 30) * 2:
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            for _ in range(args.commits):
                con.execute("BEGIN")
                for t in range(tables):
                    con.execute(f"INSERT INTO t{t} VALUES (?, ?)", (key(), b"x" * 200))
                con.execute("COMMIT")
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            print(f"{tables:16d}   {cpu / args.commits * 1e3:17.3f}   "
                  f"{wall / args.commits * 1e3:18.3f}")
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
