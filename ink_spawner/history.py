"""Every session as a record in the hub's own database (its ``db_url``: SQLite on the embedded
default, PostgreSQL in production): who ran what, asked for how much, used how much, waited how
long, and why it ended. The spawner writes the records; the right-sizing hints, the user's own
history and the admin statistics read them.

Batch jobs submitted through INK's jobs API are records too (``kind`` "batch", app "batch"): the
jobs service writes them.

INK's tables are its own (``ink_*``), next to JupyterHub's. Their schema changes are Alembic
migrations (``history_migrations/``) with a version table of INK's own (``ink_alembic_version``);
``upgrade`` runs them at the first use of a database in a process (the hub's start, the jobs
service's). A database of INK 0.1 (its own ``ink_schema`` table, version 1) is revision 0001.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from prometheus_client import Counter, Histogram
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    create_engine,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).with_name("history_migrations")
VERSION_TABLE = "ink_alembic_version"
HEAD = "0003"  # the newest migration: what the tables below are
metadata = MetaData()
sessions = Table(
    "ink_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user", String(255), nullable=False, index=True),
    Column("server", String(255), nullable=False, default=""),
    Column("app", String(64), nullable=False, index=True),
    Column("image", String(64), nullable=False, default=""),
    Column("experiment", String(64), nullable=False, default=""),
    Column("backend", String(32), nullable=False, default=""),
    Column("job_id", String(64), nullable=False, default=""),
    Column("cpus", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("walltime_s", Integer, nullable=False),
    Column("gpus", Integer, nullable=False, default=0),
    Column("submitted", DateTime, nullable=False, index=True),
    Column("started", DateTime),  # the scheduler ran it
    Column("ended", DateTime),
    # kept as plain numbers when the times are set, so that the statistics are sums and counts
    # any database computes the same way (no date arithmetic of one SQL dialect)
    Column("day", String(10), nullable=False, default=""),  # the UTC day submitted, YYYY-MM-DD
    Column("wait_s", Float),  # started - submitted
    Column("run_s", Float),  # ended - started
    Column("end_reason", String(500), nullable=False, default=""),
    Column("peak_memory_mb", Float),  # from the job's monitor agent
    Column("mean_cpu", Float),  # cores busy on average
    Column("peak_cpu", Float),
    Column("kind", String(16), nullable=False, default="session", server_default="session"),
    Column("ink_job", String(32), nullable=False, default="", server_default="", index=True),
)
# the services' own records on a site with a database (dbrecords.py): a JSON value per key
records = Table(
    "ink_records",
    metadata,
    Column("store", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", Float, nullable=False),
)
# covering indexes: each of the statistics' queries reads its index alone, in order (no table
# lookups, no sorting), so 100,000 sessions cost milliseconds per query (bench/usage_statistics.py)
Index(
    "ix_ink_sessions_figures",
    sessions.c.day,
    sessions.c.app,
    sessions.c.cpus,
    sessions.c.run_s,
    sessions.c.mean_cpu,
    sessions.c.peak_memory_mb,
    sessions.c.memory_mb,
    sessions.c.wait_s,
    sessions.c.started,
)
Index("ix_ink_sessions_day_user", sessions.c.day, sessions.c.user)
Index("ix_ink_sessions_day_wait", sessions.c.day, sessions.c.wait_s)
Index(
    "ix_ink_sessions_day_groups",
    sessions.c.day,
    sessions.c.experiment,
    sessions.c.user,
    sessions.c.memory_mb,
    sessions.c.peak_memory_mb,
)
# the same figures as Prometheus metrics at the hub's /hub/metrics
SESSIONS = Counter("ink_sessions_total", "sessions submitted", ["app"])
QUEUE_WAIT = Histogram(
    "ink_session_queue_wait_seconds",
    "time from a session's submission to its job running",
    ["app"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, float("inf")),
)
MEMORY_USED = Histogram(
    "ink_session_memory_used_fraction",
    "a session's peak memory over the memory it asked for, at its end",
    ["app"],
    buckets=(0.1, 0.25, 0.5, 0.75, 0.9, 1.0, float("inf")),
)
_READY: set[str] = set()
_UPGRADING = threading.Lock()


_ENGINES: dict[str, object] = {}


@contextlib.contextmanager
def session(url: str):
    """A session of INK's own on the hub's database (JupyterHub asks spawners not to use its
    shared session). SQLite waits up to 30 s for the hub's own writes to finish."""
    if url not in _ENGINES:
        options = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
        _ENGINES[url] = create_engine(url, **options)
    with Session(_ENGINES[url]) as db:
        yield db


def write_quietly(url: str, write, log, what: str, default=None):
    """``write(db)`` on INK's own session of ``url``. History never fails a session or a job:
    without a database, or when the write fails (logged as ``what``), ``default``."""
    if not url:
        return default
    try:
        with session(url) as db:
            return write(db)
    except Exception as e:
        log.warning("%s: %s", what, e)
        return default


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def alembic_config(connection) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(db) -> None:
    """Create INK's tables, or migrate them to the newest revision (once per database per
    process)."""
    bind = db.get_bind()
    key = str(bind.url)
    if key in _READY:
        return
    with _UPGRADING:
        for attempt in range(3):
            try:
                connection = db.connection()
                config = alembic_config(connection)
                tables = inspect(connection)
                if tables.has_table("ink_schema") and not tables.has_table(VERSION_TABLE):
                    command.stamp(config, "0001")  # INK 0.1's tables: revision 0001's
                command.upgrade(config, "head")
                db.commit()
                break
            except DBAPIError:
                # another process (the hub, the jobs service) migrated at the same moment: its
                # work is seen on the next look
                db.rollback()
                if attempt == 2:
                    raise
                time.sleep(0.5)
        _READY.add(key)


def revision(db) -> str | None:
    """The database's migration revision (None: INK's tables are not there)."""
    connection = db.connection()
    tables = inspect(connection)
    if not tables.has_table(VERSION_TABLE):
        return "0001" if tables.has_table("ink_schema") else None  # INK 0.1's own versioning
    return connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalar()


def record_submit(db, **fields) -> int:
    upgrade(db)
    now = utcnow()
    result = db.execute(insert(sessions).values(submitted=now, day=now.date().isoformat(), **fields))
    db.commit()
    return int(result.inserted_primary_key[0])


def record_times(db, record_id: int, submitted=None, started=None, ended=None) -> None:
    """Set a record's times and what follows from them (day, queue wait, run time); the times
    not given are the record's own."""
    upgrade(db)
    row = db.execute(
        select(sessions.c.submitted, sessions.c.started, sessions.c.ended).where(sessions.c.id == record_id)
    ).one_or_none()
    if row is None:
        return
    submitted, started, ended = submitted or row[0], started or row[1], ended or row[2]
    fields = {"submitted": submitted, "day": submitted.date().isoformat(), "started": started, "ended": ended}
    if started is not None:
        fields["wait_s"] = max(0.0, (started - submitted).total_seconds())
        if ended is not None:
            fields["run_s"] = max(0.0, (ended - started).total_seconds())
    db.execute(update(sessions).where(sessions.c.id == record_id).values(**fields))
    db.commit()


def record(db, record_id: int, **fields) -> None:
    """Update a record (started, ended, end_reason, usage, job_id...)."""
    if not record_id:
        return
    upgrade(db)
    db.execute(update(sessions).where(sessions.c.id == record_id).values(**fields))
    db.commit()


def close(db, record_id: int, reason: str, usage: dict | None) -> None:
    """A session's end: why, and what its job's monitor agent summed up (the user's own file:
    anything unexpected in it is dropped, never an error)."""
    if not record_id:
        return
    try:
        fields = usage_fields(usage)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        fields = {}
    record(db, record_id, end_reason=reason[:500], **fields)
    record_times(db, record_id, ended=utcnow())
    if fields:
        app, asked = db.execute(
            select(sessions.c.app, sessions.c.memory_mb).where(sessions.c.id == record_id)
        ).one()
        if asked:
            MEMORY_USED.labels(app).observe(fields["peak_memory_mb"] / asked)


def usage_fields(usage: dict | None) -> dict:
    """What the job's monitor agent summed up (``monitor_agent.Usage``), as record fields."""
    if not isinstance(usage, dict) or not usage.get("samples"):
        return {}
    samples = int(usage["samples"])
    raw = [float(usage[key]) for key in ("peak_rss_bytes", "cpu_percent_sum", "peak_cpu_percent")]
    if samples <= 0 or not all(math.isfinite(v) and v >= 0 for v in raw):
        return {}
    peak_rss, cpu_sum, peak_cpu = raw
    return {
        "peak_memory_mb": round(peak_rss / 2**20, 1),
        "mean_cpu": round(cpu_sum / samples / 100, 3),
        "peak_cpu": round(peak_cpu / 100, 3),
    }


@dataclass
class Hint:
    app: str
    sessions: int
    peak_memory_mb: float
    asked_memory_mb: int
    suggest_memory_mb: int

    def text(self, display_name: str) -> str:
        return (
            f"your last {self.sessions} {display_name} sessions peaked at "
            f"{format_mb(self.peak_memory_mb)} of {format_mb(self.asked_memory_mb)}; "
            f"{format_mb(self.suggest_memory_mb)} would do"
        )


def format_mb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB".replace(".0 GB", " GB") if mb >= 1024 else f"{int(round(mb))} MB"


def suggest_memory_mb(peak_mb: float) -> int:
    """A quarter above the highest peak, rounded up to half a GB (at least 1 GB)."""
    return max(1024, int(math.ceil(peak_mb * 1.25 / 512) * 512))


def hints(db, user: str, last: int = 5) -> dict[str, Hint]:
    """Per app, from the user's last ``last`` ended sessions that reported their usage."""
    upgrade(db)
    rows = db.execute(
        select(sessions.c.app, sessions.c.peak_memory_mb, sessions.c.memory_mb)
        .where(sessions.c.user == user, sessions.c.ended.is_not(None), sessions.c.peak_memory_mb.is_not(None))
        .order_by(sessions.c.ended.desc())
        .limit(200)
    ).all()
    per_app: dict[str, list] = defaultdict(list)
    for app, peak, asked in rows:
        if len(per_app[app]) < last:
            per_app[app].append((peak, asked))
    answer = {}
    for app, seen in per_app.items():
        peak = max(p for p, _ in seen)
        asked = max(a for _, a in seen)
        answer[app] = Hint(app, len(seen), peak, asked, suggest_memory_mb(peak))
    return answer


RECORD_FIELDS = [c.name for c in sessions.columns]


def history(db, user: str | None, since: datetime.datetime, until: datetime.datetime, limit=None):
    """Records submitted in [since, until), newest first (all users' when ``user`` is None)."""
    upgrade(db)
    query = select(sessions).where(sessions.c.submitted >= since, sessions.c.submitted < until)
    if user is not None:
        query = query.where(sessions.c.user == user)
    query = query.order_by(sessions.c.submitted.desc())
    if limit:
        query = query.limit(limit)
    return [dict(row._mapping) for row in db.execute(query)]


def percentile(ordered: list[float], q: float) -> float | None:
    """The q-th percentile of sorted values, interpolated between neighbours (the "inclusive"
    rule of numpy and statistics.quantiles)."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def driver_rows(db, statement) -> list[tuple]:
    """A query's rows as the database driver gives them: plain tuples, without SQLAlchemy's
    row objects (a tenth of the cost for 100,000 rows of numbers)."""
    compiled = statement.compile(dialect=db.get_bind().dialect)
    params = compiled.construct_params()
    args = tuple(params[name] for name in compiled.positiontup) if compiled.positional else params
    cursor = db.connection().connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        return cursor.fetchall()
    finally:
        cursor.close()


def statistics_of(db, since: datetime.datetime, until: datetime.datetime, groups: dict[str, str]) -> dict:
    """The admin figures over the UTC days from ``since`` up to (not including) ``until``:
    sessions per app per day, CPU-hours, queue wait percentiles, active users, requested vs
    used memory per app and per group (``groups``: user -> the group a session without an
    experiment counts for). Sums and counts are the database's (GROUP BY, one pass over the
    range each); only the queue waits come back one by one, for their percentiles."""
    upgrade(db)
    c = sessions.c
    # whole days, on the day column: a scan of the range, not an index lookup per row
    window = (c.day >= since.date().isoformat(), c.day < until.date().isoformat())
    measured = case((c.peak_memory_mb.is_not(None), 1), else_=0)
    per_day_app = db.execute(
        select(
            c.day,
            c.app,
            func.count(),
            func.sum(c.cpus * c.run_s),
            func.sum(c.mean_cpu * c.run_s),
            func.sum(measured),
            func.sum(case((c.peak_memory_mb.is_not(None), c.memory_mb), else_=0)),
            func.sum(c.peak_memory_mb),
        )
        .where(*window)
        .group_by(c.day, c.app)
        .order_by(c.day, c.app)
    ).all()
    cpu_hours: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    per_app: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    for _, app, _, asked_s, used_s, n, asked_mb, used_mb in per_day_app:
        cpu_hours[app][0] += (asked_s or 0) / 3600
        cpu_hours[app][1] += (used_s or 0) / 3600
        if n:
            per_app[app][0] += n
            per_app[app][1] += asked_mb or 0
            per_app[app][2] += used_mb or 0
    # running sessions (no run time yet): their CPU-hours up to now
    now = min(utcnow(), until)
    for app, cpus, started in db.execute(
        select(c.app, c.cpus, c.started).where(*window, c.started.is_not(None), c.run_s.is_(None))
    ):
        cpu_hours[app][0] += cpus * max(0.0, (now - started).total_seconds()) / 3600
    users = db.execute(
        select(c.day, func.count(func.distinct(c.user))).where(*window).group_by(c.day).order_by(c.day)
    ).all()
    waits = sorted(
        w for (w,) in driver_rows(db, select(c.wait_s).where(*window, c.wait_s.is_not(None))) if w is not None
    )
    per_group: dict[str, list] = defaultdict(lambda: [0, 0.0, 0.0])
    # grouped in the index's own order (day, experiment, user): no sorting; merged here
    for _, experiment, user, n, asked, used in driver_rows(
        db,
        select(c.day, c.experiment, c.user, func.count(), func.sum(c.memory_mb), func.sum(c.peak_memory_mb))
        .where(*window, c.peak_memory_mb.is_not(None))
        .group_by(c.day, c.experiment, c.user),
    ):
        entry = per_group[experiment or groups.get(user, "")]
        entry[0] += n
        entry[1] += asked
        entry[2] += used
    memory = [("app", name, *values) for name, values in per_app.items()]
    memory += [("group", name, *values) for name, values in per_group.items()]
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "sessions": sum(row[2] for row in per_day_app),
        "sessions_per_app_per_day": [
            {"day": row[0], "app": row[1], "sessions": row[2]} for row in per_day_app
        ],
        "active_users_per_day": [{"day": day, "users": n} for day, n in users],
        "cpu_hours": {
            app: {"asked": round(asked, 2), "used": round(used, 2)}
            for app, (asked, used) in sorted(cpu_hours.items())
        },
        "queue_wait_s": {q: percentile(waits, int(q[1:])) for q in ("p50", "p90", "p99")},
        "memory": [
            {
                "by": kind,
                "name": name,
                "sessions": n,
                "asked_gb": round(asked / 1024, 2),
                "used_gb": round(used / 1024, 2),
                "wasted_fraction": round(1 - used / asked, 3) if asked else None,
            }
            for kind, name, n, asked, used in sorted(memory)
        ],
    }


def count(db) -> int:
    upgrade(db)
    return int(db.execute(select(func.count()).select_from(sessions)).scalar())
