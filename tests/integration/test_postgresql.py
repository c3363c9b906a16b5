"""INK on PostgreSQL, as production runs it (issue 20): the hub's own tables and INK's usage
history on a real PostgreSQL server (``hub.db_url``). A session and a batch job are recorded
there, the hub restarts and finds the running session, and the session's end closes its record.

What stays in files, whatever the db_url: share links, job records, shell preferences and ticket
state are small JSON stores in the state folder (ink_core/jsonstore.py), which a site keeps on
the hub's disk with the SQLite file's care (docs/admin-guide.md)."""

import psycopg

from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_job_history import ended_record
from tests.integration.test_jobs_api import api
from tests.integration.test_spawn import reach_server


def rows(url, statement):
    with psycopg.connect(url) as connection:
        return connection.execute(statement).fetchall()


def test_the_hub_and_the_history_on_postgresql_survive_a_hub_restart(make_hub, postgres, unix_users):
    url = postgres.new_database()

    def on_postgresql(site):
        site["hub"] = {**site.get("hub", {}), "db_url": url}
        site["jobs"] = {**site.get("jobs", {}), "sweep_interval": 1}
        return site

    hub = make_hub({"type": "local"}, adjust=on_postgresql)
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"app": "jupyterlab", "walltime": "1h"})
    job = api(hub, "POST", "jobs", token, json={"name": "pg", "command": ["/bin/true"]}).json()
    assert ended_record(hub, "inkt_alice", job["id"])["end_reason"] == "completed"

    # everything is in PostgreSQL: JupyterHub's tables, INK's, and their migration revisions
    assert ("inkt_alice",) in rows(url, "select name from users")
    assert rows(url, "select version_num from ink_alembic_version") == [("0002",)]
    assert rows(url, "select kind, app, end_reason from ink_sessions order by id") == [
        ("session", "jupyterlab", ""),
        ("batch", "batch", "completed"),
    ]

    hub.stop()
    hub.start()
    hub.wait_ready("inkt_alice", token, 60)
    assert reach_server(hub, "inkt_alice", token).status_code == 200

    hub.stop_servers(["inkt_alice"])
    wait_for(
        lambda: rows(url, "select end_reason from ink_sessions where kind = 'session'")[0][0],
        30,
        what="the session's record to close",
    )
    (reason,) = rows(url, "select end_reason from ink_sessions where kind = 'session'")[0]
    assert reason == "stopped", reason
    history = hub.api("GET", "/ink/users/inkt_alice/history").json()["sessions"]
    assert sorted(r["kind"] for r in history) == ["batch", "session"]
