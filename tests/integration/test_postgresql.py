"""INK on PostgreSQL, as production runs it (issue 20): the hub's own tables, INK's usage
history and the services' records (job records, share links, terminal preferences) on a real
PostgreSQL server (``hub.db_url``). A session, a batch job and a share link are kept there, the
hub restarts and finds them all, and the session's end closes its record. Job records an earlier
version left in the state folder are brought into the database at the first start.

What stays in files whatever the db_url: the Kerberos ticket caches and their state (a ticket
must be a file for KRB5CCNAME, and a credential does not go into a database or its backups)."""

import time
from pathlib import Path

import psycopg
import requests

from ink_core.jsonstore import FileRecords
from ink_services.jobs.records import JobRecord, JobStore
from tests.helpers.hub import spawn_and_wait
from tests.helpers.net import wait_for
from tests.integration.test_job_history import ended_record
from tests.integration.test_jobs_api import api
from tests.integration.test_spawn import reach_server


def rows(url, statement):
    with psycopg.connect(url) as connection:
        return connection.execute(statement).fetchall()


def test_the_hub_and_the_history_on_postgresql_survive_a_hub_restart(
    make_hub, postgres, unix_users, tmp_path
):
    url = postgres.new_database()

    # a job record in the state folder, as every version before this one kept them
    folder = tmp_path / "pg-state" / "jobs"
    old = JobRecord(
        id="j20261130-0000beef",
        user="inkt_alice",
        name="old",
        backend="local",
        backend_id="1",
        command=["true"],
        output_dir="/nonexistent",
        submitted=time.time() - 86400,
        resources={"cpus": 1},
        state="completed",
    )
    JobStore(FileRecords(folder)).save(old)

    def on_postgresql(site):
        site["hub"] = {**site.get("hub", {}), "db_url": url}
        site["jobs"] = {**site.get("jobs", {}), "sweep_interval": 1}
        site["paths"]["state"] = str(folder.parent)
        return site

    hub = make_hub({"type": "local"}, adjust=on_postgresql)
    token = hub.user_token("inkt_alice")
    spawn_and_wait(hub, "inkt_alice", token, {"app": "jupyterlab", "walltime": "1h"})
    job = api(hub, "POST", "jobs", token, json={"name": "pg", "command": ["/bin/true"]}).json()
    assert ended_record(hub, "inkt_alice", job["id"])["end_reason"] == "completed"

    # the earlier version's record was brought in; its folder is kept aside
    assert not folder.exists() and folder.with_name("jobs.imported").is_dir()
    mine = {j["id"] for j in api(hub, "GET", "jobs", token).json()["jobs"]}
    assert mine == {job["id"], "j20261130-0000beef"}
    # a share link, kept in the database too
    files = f"{hub.url}/services/ink-files/api/v1/"
    auth = {"Authorization": f"token {token}"}
    assert requests.put(f"{files}files/home/pg.txt", data=b"on postgresql", headers=auth, timeout=30).ok
    link = requests.post(
        f"{files}shares", json={"path": "home/pg.txt", "expires_in": 3600}, headers=auth, timeout=30
    )
    assert link.status_code == 201, link.text
    shared = f"{hub.url}{link.json()['url']}files/"
    assert requests.get(shared, timeout=10).content == b"on postgresql"

    # everything is in PostgreSQL: JupyterHub's tables, INK's, and their migration revisions
    assert ("inkt_alice",) in rows(url, "select name from users")
    assert rows(url, "select version_num from ink_alembic_version") == [("0003",)]
    assert rows(url, "select store, count(*) from ink_records group by store order by store") == [
        ("jobs", 2),
        ("shares", 1),
    ]
    assert not (Path(hub.site["paths"]["state"]) / "shares").exists()
    assert rows(url, "select kind, app, end_reason from ink_sessions order by id") == [
        ("session", "jupyterlab", ""),
        ("batch", "batch", "completed"),
    ]

    hub.stop()
    hub.start()
    hub.wait_ready("inkt_alice", token, 60)
    assert reach_server(hub, "inkt_alice", token).status_code == 200
    assert requests.get(shared, timeout=10).content == b"on postgresql"
    assert {j["id"] for j in api(hub, "GET", "jobs", token).json()["jobs"]} == mine

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
