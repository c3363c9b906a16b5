#!/usr/bin/env python3
"""Renew N users' Kerberos tickets against a real test KDC (Debian krb5-kdc):
INK's renewer (concurrent, in-process pykrb5) vs a cron-style `kinit -R` per user.

    /opt/ink/bin/python bench/credentials.py [--users 10000] [--kinit-sample 1000]

Prints wall times and renewals per second. Target: 10,000 renewals within 5 minutes.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.kdc import KDC, REALM  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--kinit-sample", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ink-bench-krb-"))
    kdc = KDC(root / "kdc", lifetime="1h", renewable="1d").start()
    os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)
    from ink_services.credentials.renewer import Renewer
    from ink_spawner.kerberos import tickets
    from ink_spawner.kerberos.store import TicketStore

    try:
        names = [f"inkb{i:05d}" for i in range(args.users)]
        t0 = time.perf_counter()
        kdc.kadmin(*(f"addprinc -pw pw-{n} -maxlife 1h -maxrenewlife 1d {n}" for n in names))
        t_create = time.perf_counter() - t0

        store = TicketStore(root / "store")

        def login(name):
            times = tickets.login_password(f"{name}@{REALM}", f"pw-{name}", store.ccache_path(name), 86400)
            store.record_login(name, times.to_dict())

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(login, names))
        t_login = time.perf_counter() - t0

        renewer = Renewer(store, fraction=0.0, concurrency=args.concurrency)  # every ticket is due
        t0 = time.perf_counter()
        asyncio.run(renewer.cycle())
        t_renew = time.perf_counter() - t0
        renewed = sum(1 for n in names if store.state(n).get("renewals") == 1)

        sample = names[: args.kinit_sample]
        durations = []
        t0 = time.perf_counter()
        for name in sample:
            start = time.perf_counter()
            subprocess.run(
                ["kinit", "-R", "-c", f"FILE:{store.ccache_path(name)}"], check=True, env=os.environ
            )
            durations.append(time.perf_counter() - start)
        t_kinit = time.perf_counter() - t0
    finally:
        kdc.stop()
        shutil.rmtree(root, ignore_errors=True)

    ink_rate = renewed / t_renew
    kinit_rate = len(sample) / t_kinit
    print(f"\n{args.users} users against a test KDC (one krb5kdc process on this machine)")
    print(f"{'what':52} {'seconds':>9} {'per second':>11}")
    print(f"{'create principals (kadmin.local)':52} {t_create:9.1f} {args.users / t_create:11.0f}")
    print(
        f"{f'password logins (INK, pykrb5, {args.concurrency} threads)':52} {t_login:9.1f} {args.users / t_login:11.0f}"
    )
    print(f"{'renew all (INK Renewer.cycle)':52} {t_renew:9.1f} {ink_rate:11.0f}")
    print(f"{f'kinit -R per user, sequential ({len(sample)} sampled)':52} {t_kinit:9.1f} {kinit_rate:11.0f}")
    print(
        f"renewed {renewed}/{args.users}; median kinit -R {statistics.median(durations) * 1000:.1f} ms;"
        f" INK / kinit rate = {ink_rate / kinit_rate:.1f}x; 10,000 renewals take"
        f" {10000 / ink_rate:.0f} s with INK (target <= 300 s)"
    )


if __name__ == "__main__":
    main()
