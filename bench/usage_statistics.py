#!/usr/bin/env python3
"""The admin statistics over a large session history (no hub needed).

Writes N session records (default 100,000, spread over 90 days, 300 users, 5 apps) into a
fresh SQLite database with INK's own tables, then times, median of R runs each:
- INK's figures (``history.statistics_of``: per app per day, CPU-hours, queue-wait
  percentiles, active users, memory asked against used per app and group) over 30 and 90 days,
  and the CSV export of 30 days;
- as the floor, one SQL GROUP BY of sessions per app per day over the same range (what any
  page showing those counts must at least pay; JupyterHub has no usage statistics of its own
  to compare with).

    /opt/ink/bin/python bench/usage_statistics.py [--records 100000] [--runs 7]
"""

import argparse
import datetime
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, insert, select  # noqa: E402

from ink_spawner import history  # noqa: E402
from ink_spawner.historyapi import records_csv  # noqa: E402

APPS = ["jupyterlab", "vscode", "desktop", "rootbrowser", "sshnode"]


def fill(db, n: int, end: datetime.datetime) -> None:
    rng = random.Random(42)
    rows = []
    for i in range(n):
        submitted = end - datetime.timedelta(seconds=rng.uniform(0, 90 * 86400))
        wait_s = rng.expovariate(1 / 120)
        run_s = rng.uniform(600, 8 * 3600)
        started = submitted + datetime.timedelta(seconds=wait_s)
        memory = rng.choice([2048, 4096, 8192, 16384])
        rows.append(
            {
                "user": f"user{rng.randrange(300):03d}",
                "server": "",
                "app": rng.choice(APPS),
                "experiment": rng.choice(["juno", "lhaaso", "cepc", ""]),
                "backend": "slurm",
                "job_id": str(i),
                "cpus": rng.choice([1, 2, 4, 8]),
                "memory_mb": memory,
                "walltime_s": 8 * 3600,
                "gpus": 0,
                "submitted": submitted,
                "started": started,
                "ended": started + datetime.timedelta(seconds=run_s),
                "day": submitted.date().isoformat(),
                "wait_s": wait_s,
                "run_s": run_s,
                "end_reason": "stopped",
                "peak_memory_mb": memory * rng.uniform(0.05, 0.9),
                "mean_cpu": rng.uniform(0, 1),
                "peak_cpu": rng.uniform(0, 2),
            }
        )
    for start in range(0, n, 10_000):
        db.execute(insert(history.sessions), rows[start : start + 10_000])
    db.commit()


def timed(fn, runs: int) -> float:
    seen = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        seen.append(time.perf_counter() - started)
    return statistics.median(seen) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ink-bench-stats-")
    end = history.utcnow()
    until = datetime.datetime.combine(end.date() + datetime.timedelta(days=1), datetime.time())
    with history.session(f"sqlite:///{folder}/hub.sqlite") as db:
        history.upgrade(db)
        fill(db, args.records, end)
        groups = {f"user{i:03d}": "juno" for i in range(300)}
        rows = []
        for days in (30, 90):
            since = until - datetime.timedelta(days=days)
            ink = timed(lambda since=since: history.statistics_of(db, since, until, groups), args.runs)
            day = history.sessions.c.day
            floor_query = (
                select(day, history.sessions.c.app, func.count())
                .where(day >= since.date().isoformat(), day < until.date().isoformat())
                .group_by(day, history.sessions.c.app)
            )
            floor = timed(lambda q=floor_query: db.execute(q).all(), args.runs)
            count = history.statistics_of(db, since, until, groups)["sessions"]
            rows.append((f"figures, {days} days", count, ink, floor))
        since = until - datetime.timedelta(days=30)
        csv_ms = timed(lambda: records_csv(history.history(db, None, since, until)), args.runs)
        rows.append(("CSV export, 30 days", rows[0][1], csv_ms, None))
    print(f"{args.records:,} records in SQLite, median of {args.runs} runs")
    print(f"{'what':24} {'sessions':>9} {'INK ms':>8} {'GROUP BY ms':>12} {'ratio':>6}")
    for what, count, ink, floor in rows:
        ratio = f"{ink / floor:.1f}" if floor else "-"
        floor_text = f"{floor:.0f}" if floor else "-"
        print(f"{what:24} {count:>9,} {ink:>8.0f} {floor_text:>12} {ratio:>6}")


if __name__ == "__main__":
    main()
