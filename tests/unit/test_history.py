"""The session history on a real SQLite database: records, right-sizing hints, the admin
figures of a scripted day, and the usage summary the job's monitor agent keeps."""

import csv
import datetime
import io
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from ink_spawner import history
from ink_spawner.historyapi import records_csv
from ink_spawner.jobscript.monitor_agent import MonitorAgent

DAY = datetime.datetime(2026, 11, 30)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """The hub's database as the embedded default keeps it (SQLite) and as production does (a
    real PostgreSQL server): every figure must come out the same on both."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    with history.session(url) as session:
        yield session


def add(db, user, app, *, at, wait_s, hours, memory_mb=4096, cpus=1, peak_mb=None, mean_cpu=None, **kw):
    record_id = history.record_submit(
        db, user=user, server="", app=app, cpus=cpus, memory_mb=memory_mb, walltime_s=8 * 3600, **kw
    )
    started = at + datetime.timedelta(seconds=wait_s)
    ended = started + datetime.timedelta(hours=hours)
    history.record_times(db, record_id, submitted=at, started=started, ended=ended)
    history.record(db, record_id, end_reason="stopped")
    if peak_mb is not None:
        history.record(db, record_id, peak_memory_mb=peak_mb, mean_cpu=mean_cpu)
    return record_id


def ink_tables_differ(db) -> list:
    """What Alembic finds between the database's ink_* tables and the model in history.py."""
    context = MigrationContext.configure(
        db.connection(),
        opts={"include_name": lambda name, kind, _: kind != "table" or name in history.metadata.tables},
    )
    return compare_metadata(context, history.metadata)


def test_a_new_database_gets_the_newest_tables_as_the_migrations_make_them(db):
    history.upgrade(db)
    assert history.revision(db) == history.HEAD
    assert ink_tables_differ(db) == []
    assert history.count(db) == 0


def test_a_database_of_ink_0_1_is_migrated_and_keeps_its_records(tmp_path):
    """tests/data/history-v1.sql: the tables INK 0.1 made (its own ink_schema version 1), with
    a session in them, dumped by that version's code."""
    path = tmp_path / "hub.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript((Path(__file__).parents[1] / "data" / "history-v1.sql").read_text())
    with history.session(f"sqlite:///{path}") as db:
        history.upgrade(db)
        assert history.revision(db) == history.HEAD
        assert ink_tables_differ(db) == []
        assert not inspect(db.connection()).has_table("ink_schema")
        (row,) = history.history(db, None, DAY, DAY + datetime.timedelta(days=1))
        assert (row["user"], row["app"], row["job_id"], row["run_s"], row["peak_memory_mb"]) == (
            "inkt_alice",
            "jupyterlab",
            "41",
            7200.0,
            1300.0,
        )
        assert (row["kind"], row["ink_job"]) == ("session", "")
        # the new columns take new records, and the figures still add up the old one
        history.record_submit(
            db,
            user="inkt_bob",
            server="",
            app="batch",
            kind="batch",
            ink_job="j20261130-0000abcd",
            cpus=1,
            memory_mb=1024,
            walltime_s=600,
        )
        assert history.count(db) == 2


def test_the_migrations_go_back_down_and_up_again(db):
    """An admin who rolls INK back runs Alembic's downgrade on INK's version table."""
    history.record_submit(
        db, user="alice", server="", app="jupyterlab", cpus=1, memory_mb=1024, walltime_s=60
    )
    config = history.alembic_config(db.connection())
    command.downgrade(config, "0001")
    db.commit()
    columns = {c["name"] for c in inspect(db.connection()).get_columns("ink_sessions")}
    assert "kind" not in columns and "user" in columns
    assert db.execute(text("select version from ink_schema")).scalar() == 1
    command.upgrade(history.alembic_config(db.connection()), "head")
    db.commit()
    assert history.revision(db) == history.HEAD and ink_tables_differ(db) == []
    assert history.count(db) == 1


def test_a_session_is_recorded_from_submit_to_its_end(db):
    record_id = history.record_submit(
        db, user="alice", server="", app="jupyterlab", cpus=2, memory_mb=8192, walltime_s=3600, job_id="17"
    )
    history.record_times(db, record_id, started=history.utcnow())
    usage = {
        "samples": 4,
        "peak_rss_bytes": 1300 * 2**20,
        "cpu_percent_sum": 200.0,
        "peak_cpu_percent": 150.0,
    }
    history.close(db, record_id, "stopped", usage)
    (row,) = history.history(db, "alice", DAY, history.utcnow() + datetime.timedelta(days=1))
    assert (row["peak_memory_mb"], row["mean_cpu"], row["peak_cpu"]) == (1300.0, 0.5, 1.5)
    assert row["end_reason"] == "stopped" and row["ended"] >= row["started"] >= row["submitted"]
    assert row["wait_s"] == (row["started"] - row["submitted"]).total_seconds()
    assert row["run_s"] == (row["ended"] - row["started"]).total_seconds()
    assert row["day"] == row["submitted"].date().isoformat()
    assert history.history(db, "bob", DAY, history.utcnow()) == []


@pytest.mark.parametrize(
    "usage",
    [
        None,
        [],
        {"samples": 0},
        {"samples": "x", "peak_rss_bytes": 1},
        {"samples": 2, "peak_rss_bytes": -5, "cpu_percent_sum": 1, "peak_cpu_percent": 1},
        {"samples": 2, "peak_rss_bytes": float("nan"), "cpu_percent_sum": 1, "peak_cpu_percent": 1},
        {"samples": 2},
    ],
)
def test_whatever_the_users_usage_file_holds_the_record_closes(db, usage):
    record_id = history.record_submit(
        db, user="alice", app="jupyterlab", cpus=1, memory_mb=1024, walltime_s=60
    )
    history.close(db, record_id, "TIMEOUT", usage)
    (row,) = history.history(db, "alice", DAY, history.utcnow() + datetime.timedelta(days=1))
    assert row["end_reason"] == "TIMEOUT" and row["ended"] is not None and row["peak_memory_mb"] is None


def test_hints_come_from_the_last_five_sessions_of_each_app(db):
    for i, peak in enumerate([9000, 1100, 1300, 900, 1200, 1000]):  # the oldest (9000) is left out
        add(
            db,
            "alice",
            "jupyterlab",
            at=DAY + datetime.timedelta(hours=i),
            wait_s=5,
            hours=1,
            memory_mb=8192,
            peak_mb=peak,
        )
    add(db, "alice", "desktop", at=DAY, wait_s=5, hours=1, memory_mb=4096, peak_mb=300)
    add(db, "bob", "jupyterlab", at=DAY, wait_s=5, hours=1, peak_mb=50_000)
    hints = history.hints(db, "alice")
    lab = hints["jupyterlab"]
    assert (lab.sessions, lab.peak_memory_mb, lab.asked_memory_mb) == (5, 1300, 8192)
    assert lab.suggest_memory_mb == 2048  # 1300 * 1.25 = 1625, up to the next half GB
    assert lab.text("JupyterLab") == "your last 5 JupyterLab sessions peaked at 1.3 GB of 8 GB; 2 GB would do"
    assert hints["desktop"].suggest_memory_mb == 1024  # never below 1 GB
    assert "vscode" not in hints


# a scripted day: user, app, submitted (hours after DAY), queue wait (s), hours run, cores, memory
# asked (MB), peak used (MB), mean cores busy, experiment
SCRIPTED_DAY = [
    ("alice", "jupyterlab", 8, 10, 2, 2, 8192, 2048, 0.5, "juno"),
    ("alice", "desktop", 9, 30, 1, 1, 4096, 1024, 0.25, "juno"),
    ("bob", "jupyterlab", 10, 50, 4, 1, 2048, 2048, 1.0, ""),
    ("carol", "jupyterlab", 30, 70, 1, 4, 4096, None, None, ""),  # the next day
    ("dave", "jupyterlab", -2, 1, 1, 1, 4096, None, None, ""),  # the day before: outside
]


def test_the_figures_of_a_scripted_day_equal_its_records(db):
    day = DAY
    h = datetime.timedelta(hours=1)
    for user, app, at, wait_s, hours, cpus, memory_mb, peak_mb, mean_cpu, experiment in SCRIPTED_DAY:
        add(
            db,
            user,
            app,
            at=day + at * h,
            wait_s=wait_s,
            hours=hours,
            cpus=cpus,
            memory_mb=memory_mb,
            peak_mb=peak_mb,
            mean_cpu=mean_cpu,
            experiment=experiment,
        )
    figures = history.statistics_of(db, day, day + 2 * 24 * h, {"bob": "lhaaso"})
    assert figures["sessions"] == 4
    assert figures["sessions_per_app_per_day"] == [
        {"day": "2026-11-30", "app": "desktop", "sessions": 1},
        {"day": "2026-11-30", "app": "jupyterlab", "sessions": 2},
        {"day": "2026-12-01", "app": "jupyterlab", "sessions": 1},
    ]
    assert figures["active_users_per_day"] == [
        {"day": "2026-11-30", "users": 2},
        {"day": "2026-12-01", "users": 1},
    ]
    # asked: 2 cores x 2 h + 1 x 4 h + 4 x 1 h; used: 0.5 x 2 h + 1.0 x 4 h
    assert figures["cpu_hours"] == {
        "desktop": {"asked": 1.0, "used": 0.25},
        "jupyterlab": {"asked": 12.0, "used": 5.0},
    }
    assert figures["queue_wait_s"]["p50"] == 40.0  # of 10, 30, 50, 70
    memory = {(m["by"], m["name"]): m for m in figures["memory"]}
    assert (
        memory[("app", "jupyterlab")]["asked_gb"] == 10.0 and memory[("app", "jupyterlab")]["used_gb"] == 4.0
    )
    assert memory[("app", "jupyterlab")]["wasted_fraction"] == 0.6
    assert (
        memory[("group", "juno")]["sessions"] == 2 and memory[("group", "lhaaso")]["wasted_fraction"] == 0.0
    )
    # the CSV holds the same records, one line each
    rows = list(csv.DictReader(io.StringIO(records_csv(history.history(db, None, day, day + 2 * 24 * h)))))
    assert sorted(r["user"] for r in rows) == ["alice", "alice", "bob", "carol"]
    assert rows[0]["submitted"].startswith("2026-12-01T06:00")


def test_the_monitor_agent_keeps_the_sessions_usage(tmp_path):
    path = tmp_path / "lab-1.usage.json"
    agent = MonitorAgent("", "", "", 1, log=print, usage_path=str(path))
    for rss, cpu in ((100, 50.0), (300, 150.0), (200, 100.0)):
        agent.keep({"rss_bytes": rss * 2**20, "cpu_percent": cpu})
    assert json.loads(path.read_text()) == {
        "samples": 3,
        "peak_rss_bytes": 300 * 2**20,
        "cpu_percent_sum": 300.0,
        "peak_cpu_percent": 150.0,
    }
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    # a folder it cannot write to: logged once, the app goes on
    said = []
    stuck = MonitorAgent("", "", "", 1, log=said.append, usage_path=str(tmp_path / "missing" / "u.json"))
    stuck.keep({"rss_bytes": 1, "cpu_percent": 0.0})
    stuck.keep({"rss_bytes": 1, "cpu_percent": 0.0})
    assert len(said) == 1 and "cannot keep the session's usage" in said[0]
