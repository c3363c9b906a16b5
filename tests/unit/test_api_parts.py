"""Pieces of INK's REST APIs that need no hub: request checks, scopes, rate limits, ranges,
the CLI's exit codes and token store."""

import json
import os

import pytest

from ink_client import api as client
from ink_core.ranges import parse_ranges
from ink_core.scopes import JOBS_SUBMIT
from ink_services.jobs.records import JobRecord, JobStore, new_job_id
from ink_services.jobs.service import SpecError, check_request
from ink_services.ratelimit import RateLimiter
from ink_services.scopes import has_scope


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "command"),
        ({"command": ["a"], "script": "b"}, "command"),
        ({"command": "ls -l"}, "command"),
        ({"command": ["ok", ""]}, "command"),
        ({"command": ["a\x00b"]}, "command"),
        ({"script": "   "}, "script"),
        ({"command": ["a"], "name": "../x"}, "name"),
        ({"command": ["a"], "env": {"1X": "y"}}, "env"),
        ({"command": ["a"], "env": {"JUPYTERHUB_API_TOKEN": "y"}}, "env"),
        ({"command": ["a"], "env": {"X": 1}}, "env.X"),
        ({"command": ["a"], "output_dir": "a/../../b"}, "output_dir"),
        ({"command": ["a"], "output_dir": ""}, "output_dir"),
        ({"command": ["a"], "queue": "fast"}, "queue"),
        ({"command": ["a"], "session": "../x"}, "session"),
        ({"command": ["a"], "session": 3}, "session"),
        ({"notebook": "../fit.ipynb"}, "notebook"),
        ({"notebook": "/home/alice/fit.ipynb"}, "notebook"),
        ({"notebook": "fit.py"}, "notebook"),
        ({"notebook": "fit.ipynb", "command": ["a"]}, "command"),
        ({"notebook": "fit.ipynb", "parameters": {"import": 1}}, "parameters"),
        ({"notebook": "fit.ipynb", "parameters": {"_secret": 1}}, "parameters"),
        ({"notebook": "fit.ipynb", "parameters": ["run"]}, "parameters"),
        ({"notebook": "fit.ipynb", "parameters": {"big": "x" * 9000}}, "parameters"),
    ],
)
def test_job_requests_are_checked_field_by_field(body, field):
    with pytest.raises(SpecError) as refused:
        check_request(body)
    assert str(refused.value).startswith(field)


def test_a_good_request_passes():
    own = check_request({"command": ["python3", "fit.py"], "env": {"SEED": "1"}, "output_dir": "runs/fits"})
    assert own == {
        "name": "job",
        "env": {"SEED": "1"},
        "output_dir": "runs/fits",
        "session": None,
        "array": None,
    }
    assert check_request({"command": ["dask-worker"], "session": ""})["session"] == ""  # the default server


def test_scopes_unfiltered_or_filtered_to_the_caller():
    assert has_scope({"name": "alice", "scopes": [JOBS_SUBMIT]}, JOBS_SUBMIT)
    assert has_scope({"name": "alice", "scopes": [f"{JOBS_SUBMIT}!user=alice"]}, JOBS_SUBMIT)
    assert not has_scope({"name": "alice", "scopes": [f"{JOBS_SUBMIT}!user=bob"]}, JOBS_SUBMIT)
    assert not has_scope({"name": "alice", "scopes": ["custom:ink:jobs:read"]}, JOBS_SUBMIT)


def test_rate_limiter_bursts_then_refills(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("ink_services.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(rate_per_minute=60, burst=3)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("a")
    assert 0 < wait <= 1
    assert limiter.take("b") == 0  # each caller its own bucket
    now[0] += 1.0
    assert limiter.take("a") == 0
    assert RateLimiter(rate_per_minute=0).take("a") == 0


@pytest.mark.parametrize(
    "header, ranges",
    [
        (None, []),
        ("bytes=0-9", [(0, 9)]),
        ("bytes=90-", [(90, 99)]),
        ("bytes=-10", [(90, 99)]),
        ("bytes=0-0,50-59", [(0, 0), (50, 59)]),
        ("bytes=0-1000", [(0, 99)]),
        ("bytes=100-", None),
        ("items=0-5", []),
        ("bytes=x-y", []),
    ],
)
def test_byte_ranges(header, ranges):
    assert parse_ranges(header, 100) == ranges


def test_job_records_are_kept_per_user(tmp_path):
    store = JobStore(tmp_path)
    ids = [new_job_id() for _ in range(2)]
    for i, job_id in enumerate(ids):
        store.save(JobRecord(job_id, "alice", "n", "local", "1.2.3", ["true"], "/d", 100.0 + i, {}))
    assert [r.id for r in store.of_user("alice")] == ids[::-1]
    assert store.of_user("bob") == [] and store.get("bob", ids[0]) is None
    assert store.get("alice", "../bob/x") is None
    with pytest.raises(ValueError):
        store.of_user("../alice")


@pytest.mark.parametrize(
    "status, code", [(401, 3), (403, 3), (404, 4), (409, 5), (400, 6), (429, 6), (503, 7)]
)
def test_cli_exit_codes(status, code):
    assert client.exit_code_for(status) == code


def test_token_store_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    client.save_token("http://hub.example:8000", "secret-token")
    path = tmp_path / "ink" / "tokens.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {
        "http://hub.example:8000": "secret-token",
        "default": "http://hub.example:8000",
    }
    monkeypatch.delenv("INK_TOKEN", raising=False)
    monkeypatch.delenv("INK_HUB", raising=False)
    assert client.Client(progress=False).hub == "http://hub.example:8000"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    with pytest.raises(client.ClientError) as missing:
        client.Client(progress=False)
    assert missing.value.code == client.AUTH and os.path.basename(str(path)) == "tokens.json"


def test_the_rate_limit_keys_on_the_token_not_on_how_the_header_spells_it():
    from types import SimpleNamespace

    from ink_services.ratelimit import caller_key

    def handler(header, user):
        return SimpleNamespace(
            request=SimpleNamespace(headers={"Authorization": header}, remote_ip="127.0.0.1"),
            current_user=user,
        )

    alice = {"name": "alice", "token_id": "a17"}
    keys = {caller_key(handler(h, alice)) for h in ("token abc", "Token abc", "Bearer abc", "token  abc")}
    assert keys == {"t:a17"}
    other = caller_key(handler("token def", {"name": "alice", "token_id": "a18"}))
    assert other != "t:a17", "another token of the same user has its own budget"
    assert caller_key(handler("", None)).startswith("a:")
