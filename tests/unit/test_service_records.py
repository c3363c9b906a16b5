"""The services' records (job records, share links, terminal preferences) on files and in the
hub's database (SQLite and a real PostgreSQL): the same answers from both, keys that cannot
leave their store, and the way up from a site that kept them in files."""

import time

import pytest

from ink_core.jsonstore import FileRecords
from ink_services.files.shares import ShareError, ShareStore
from ink_services.jobs.records import JobRecord, JobStore
from ink_services.shell.prefs import PrefsStore
from ink_spawner import history
from ink_spawner.dbrecords import DBRecords


@pytest.fixture(params=["files", "sqlite", "postgresql"])
def make_records(request, tmp_path):
    def make(store: str):
        if request.param == "files":
            return FileRecords(tmp_path / store)
        if request.param == "sqlite":
            return DBRecords(f"sqlite:///{tmp_path / 'hub.sqlite'}", store)
        if not hasattr(request, "_ink_pg"):
            request._ink_pg = request.getfixturevalue("postgres").new_database()
        return DBRecords(request._ink_pg, store)

    return make


def job(user, job_id, state="pending", submitted=None):
    return JobRecord(
        id=job_id,
        user=user,
        name="fit",
        backend="slurm",
        backend_id="42",
        command=["true"],
        output_dir="/home/x/ink-jobs/" + job_id,
        submitted=submitted or time.time(),
        resources={"cpus": 1},
        state=state,
    )


def test_the_four_calls_and_prefixes(make_records):
    records = make_records("jobs")
    records.put("alice/j1", {"n": 1})
    records.put("alice/j2", {"n": 2})
    records.put("alice_x/j3", {"n": 3})  # "_" is a LIKE wildcard: must not match "alice/"
    records.put("bob/j1", {"n": 4})
    records.put("alice/j1", {"n": 5})  # replaced, not doubled
    assert records.get("alice/j1") == {"n": 5} and records.get("carol/j1") is None
    assert sorted(k for k, _ in records.items("alice/")) == ["alice/j1", "alice/j2"]
    assert sorted(k for k, _ in records.items()) == ["alice/j1", "alice/j2", "alice_x/j3", "bob/j1"]
    records.delete("alice/j2")
    records.delete("alice/nothing")  # deleting what is not there is fine
    assert sorted(k for k, _ in records.items("alice/")) == ["alice/j1"]
    # another store of the same database sees none of them
    assert list(make_records("shares").items()) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "alice/../bob", "/abs", "a//b", "", "a/.hidden", "x" * 300])
def test_keys_stay_inside_their_store(make_records, key):
    records = make_records("jobs")
    with pytest.raises(ValueError, match="not a record key"):
        records.put(key, {})
    with pytest.raises(ValueError, match="not a record key"):
        records.get(key)


def test_job_share_and_prefs_stores_on_each(make_records):
    jobs = JobStore(make_records("jobs"))
    jobs.save(job("alice", "j20261202-00000001", submitted=1))
    jobs.save(job("alice", "j20261202-00000002", state="completed", submitted=2))
    jobs.save(job("bob", "j20261202-00000003", submitted=3))
    assert [r.id for r in jobs.of_user("alice")] == ["j20261202-00000002", "j20261202-00000001"]
    assert {r.id for r in jobs.unfinished()} == {"j20261202-00000001", "j20261202-00000003"}
    assert jobs.get("bob", "j20261202-00000001") is None  # alice's job is not bob's
    assert jobs.get("alice", "../x") is None

    shares = ShareStore(make_records("shares"))
    secret, link = shares.create("alice", "data/run1.root", 3600, False)
    assert shares.resolve(secret).path == "data/run1.root"
    with pytest.raises(ShareError):
        shares.revoke("bob", link.id)  # not his
    shares.revoke("alice", link.id)
    with pytest.raises(ShareError, match="no such share link"):
        shares.resolve(secret)

    prefs = PrefsStore(make_records("shell-prefs"))
    assert prefs.update("alice", {"font_size": 18})["font_size"] == 18
    assert prefs.get("alice") == {"font_size": 18, "theme": "dark"}


def test_a_site_on_files_moves_into_its_database(tmp_path):
    folder = tmp_path / "state" / "jobs"
    on_files = JobStore(FileRecords(folder))  # the layout every earlier version wrote
    on_files.save(job("alice", "j20261201-0000000a", submitted=1))
    on_files.save(job("bob", "j20261201-0000000b", submitted=2))
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    records = DBRecords(url, "jobs")
    records.put("bob/j20261201-0000000b", {"kept": "the database's row wins"})
    assert records.import_folder(folder) == 1
    assert not folder.exists() and (tmp_path / "state" / "jobs.imported" / "alice").is_dir()
    moved = JobStore(records)
    assert [r.id for r in moved.of_user("alice")] == ["j20261201-0000000a"]
    assert records.get("bob/j20261201-0000000b") == {"kept": "the database's row wins"}
    assert records.import_folder(folder) == 0  # once
    with history.session(url) as db:
        assert history.revision(db) == history.HEAD
