"""The `ink` command as a user runs it: login, a 200 MB upload and download that are
interrupted and resumed, jobs submitted, shown, read and cancelled; exit codes."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from ink_spawner.history import HEAD
from tests.helpers.cli import ink
from tests.helpers.devpts import devpts_mounted
from tests.helpers.net import wait_for


def interrupted(env, *args, when, timeout=60):
    """Start `ink ARGS`, kill it (SIGKILL) once ``when()`` is true."""
    proc = subprocess.Popen([sys.executable, "-m", "ink_client.cli", *args], env=env)
    try:
        wait_for(when, timeout, interval=0.05, what="the transfer to be under way")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_cli_transfers_resume_and_jobs(make_hub, unix_users, tmp_path):
    hub = make_hub({"type": "local"})
    token = hub.user_token("inkt_alice")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("INK_TOKEN", None)
    # not logged in: exit code 3 and a sentence
    result = ink(env, "files", "ls", "home", check=False)
    assert result.returncode == 3 and "ink login" in result.stderr
    assert ink(env, "login", hub.url, "--token", "wrong", check=False).returncode == 3
    assert "as inkt_alice" in ink(env, "login", hub.url, "--token", token).stdout
    stored = tmp_path / "config" / "ink" / "tokens.json"
    assert oct(stored.stat().st_mode & 0o777) == "0o600" and json.loads(stored.read_text())[hub.url] == token

    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for _ in range(50):
            f.write(os.urandom(4 * 1024 * 1024))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    home = Path("/home/inkt_alice")
    (home / "cli-big.bin").unlink(missing_ok=True)

    def partial_upload():
        return any(
            p.name.startswith(".ink-upload-cli-") and p.stat().st_size > 20 * 2**20 for p in home.iterdir()
        )

    interrupted(env, "files", "put", str(big), "home/cli-big.bin", when=partial_upload)
    assert not (home / "cli-big.bin").exists()
    result = json.loads(ink(env, "--json", "files", "put", str(big), "home/cli-big.bin").stdout)
    assert result["size"] == big.stat().st_size and result["resumed_from"] > 0
    assert hashlib.sha256((home / "cli-big.bin").read_bytes()).hexdigest() == digest

    dest = tmp_path / "back.bin"
    part = tmp_path / "back.bin.ink-part"
    interrupted(
        env,
        "--progress",
        "files",
        "get",
        "home/cli-big.bin",
        str(dest),
        when=lambda: part.exists() and part.stat().st_size > 20 * 2**20,
    )
    result = json.loads(ink(env, "--json", "files", "get", "home/cli-big.bin", str(dest)).stdout)
    assert result["resumed_from"] > 0 and not part.exists()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    # uninterrupted, for the record (shown with -s: a figure, not a timed assertion)
    started = time.monotonic()
    ink(env, "files", "put", "--overwrite", str(big), "home/cli-big.bin")
    upload_s = time.monotonic() - started
    dest.unlink()
    started = time.monotonic()
    ink(env, "files", "get", "home/cli-big.bin", str(dest))
    download_s = time.monotonic() - started
    print(f"\nCLI on loopback, 200 MiB: put {200 / upload_s:.0f} MiB/s, get {200 / download_s:.0f} MiB/s")

    listing = json.loads(ink(env, "--json", "files", "ls", "home").stdout)
    assert "cli-big.bin" in [e["name"] for e in listing["entries"]]
    assert ink(env, "files", "mkdir", "home/cli-dir/a", "-p").returncode == 0
    assert ink(env, "files", "mkdir", "home/cli-dir/a", check=False).returncode == 5  # exists
    assert ink(env, "files", "rm", "home/cli-dir", check=False).returncode == 5  # not empty
    assert ink(env, "files", "rm", "home/cli-dir", "-r").returncode == 0
    assert ink(env, "files", "get", "home/nothing-here", str(tmp_path / "x"), check=False).returncode == 4
    link = ink(env, "files", "share", "home/cli-big.bin", "--days", "1").stdout.strip()
    assert link.startswith(hub.url + "/services/ink-files/s/")

    # jobs
    job_id = ink(
        env, "jobs", "submit", "--name", "hello", "--", "/bin/echo", "hello", "from", "cli"
    ).stdout.strip()
    wait_for(
        lambda: json.loads(ink(env, "--json", "jobs", "show", job_id).stdout)["state"] == "completed", 60
    )
    assert ink(env, "jobs", "logs", job_id).stdout == "hello from cli\n"
    long_id = ink(env, "jobs", "submit", "--", "/bin/sleep", "300").stdout.strip()
    assert ink(env, "jobs", "cancel", long_id).returncode == 0
    wait_for(
        lambda: json.loads(ink(env, "--json", "jobs", "show", long_id).stdout)["state"] == "cancelled", 30
    )
    ids = [j["id"] for j in json.loads(ink(env, "--json", "jobs", "ls").stdout)]
    assert ids == [long_id, job_id]
    result = ink(env, "jobs", "submit", "--memory", "999G", "--", "true", check=False)
    assert result.returncode == 6 and "memory" in result.stderr
    assert ink(env, "jobs", "show", "j20200101-deadbeef", check=False).returncode == 4


def test_node_check_on_this_node_names_what_lacks_then_passes():
    """The suite's node runs all five apps (the app tests prove it). With /dev/pts mounted as
    some containers do (no tty group), `ink node-check` names what the SSH node then lacks; with
    Linux's standard mount it finds nothing missing."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "INK_CONFIG": str(repo / "etc" / "ink.yaml")}
    with devpts_mounted("gid=0,mode=600"):
        result = ink(env, "--json", "node-check", check=False)
    answer = json.loads(result.stdout)
    assert result.returncode == 1 and not answer["ok"], answer
    assert [app for app, lacking in answer["missing"].items() if lacking] == ["sshnode"], answer
    assert "/dev/pts without gid=5" in answer["missing"]["sshnode"][0]
    with devpts_mounted("gid=5,mode=620"):
        result = ink(env, "--json", "node-check", check=False)
    answer = json.loads(result.stdout)
    assert result.returncode == 0 and answer["ok"], answer
    assert set(answer["missing"]) >= {"jupyterlab", "rootbrowser", "desktop", "vscode", "sshnode"}
    wrong = ink(env, "node-check", "--apps", "jupyterlab,nosuchapp", check=False)
    assert wrong.returncode == 2 and "no app 'nosuchapp'" in wrong.stderr


def test_upgrade_db_migrates_ink_0_1s_tables_and_goes_back(tmp_path):
    """An admin's upgrade: `ink upgrade-db` on a hub database of INK 0.1 (a dump that version's
    code made) copies the file aside, migrates, and keeps the records; `--downgrade-to` goes
    back; a revision that does not exist is a sentence and exit 1."""
    repo = Path(__file__).resolve().parents[2]
    database = tmp_path / "jupyterhub.sqlite"
    with sqlite3.connect(database) as old:
        old.executescript((repo / "tests" / "data" / "history-v1.sql").read_text())
    site = tmp_path / "ink.yaml"
    site.write_text(f"hub:\n  db_url: sqlite:///{database}\nbackend:\n  type: local\n")
    env = {**os.environ, "INK_CONFIG": str(site)}

    def tables():
        with sqlite3.connect(database) as db:
            names = {name for (name,) in db.execute("select name from sqlite_master where type = 'table'")}
            columns = {row[1] for row in db.execute("pragma table_info(ink_sessions)")}
            count = db.execute("select count(*) from ink_sessions").fetchone()[0]
        return names, columns, count

    result = ink(env, "upgrade-db")
    assert f"revision 0001 -> {HEAD}" in result.stdout, result.stdout
    assert len(list(tmp_path.glob("jupyterhub.sqlite.*.bak"))) == 1
    names, columns, count = tables()
    assert "ink_schema" not in names and {"kind", "ink_job"} <= columns and count == 1
    assert "ink_records" in names  # the services' records (0003)
    again = ink(env, "upgrade-db")
    assert f"revision {HEAD} -> {HEAD}" in again.stdout
    back = ink(env, "upgrade-db", "--downgrade-to", "0001")
    assert f"revision {HEAD} -> 0001" in back.stdout
    names, columns, count = tables()
    assert "ink_schema" in names and "kind" not in columns and "ink_records" not in names and count == 1
    wrong = ink(env, "upgrade-db", "--downgrade-to", "0999", check=False)
    assert wrong.returncode == 1 and "0999" in wrong.stderr and "Traceback" not in wrong.stderr


def test_install_service_writes_a_unit_systemd_accepts(tmp_path):
    """`ink install-service`: the hub as a systemd unit that systemd's own checker accepts, the
    hub alone as its process to stop (sessions survive a restart), on the site's state folder.
    Where systemd does not run (this test machine, CI's containers), it says so and enables
    nothing."""
    site = tmp_path / "ink.yaml"
    state = tmp_path / "state"
    site.write_text(f"paths:\n  state: {state}\nbackend:\n  type: local\n")
    env = {**os.environ, "INK_CONFIG": str(site)}
    units = tmp_path / "units"
    result = ink(env, "install-service", "--unit-dir", str(units))
    unit = units / "ink.service"
    text = unit.read_text()
    assert f"Environment=INK_CONFIG={site}" in text and f"WorkingDirectory={state}" in text
    assert f"ExecStart={Path(sys.prefix) / 'bin' / 'ink'} up" in text
    assert "KillMode=process" in text and "Restart=on-failure" in text
    assert state.is_dir() and oct(state.stat().st_mode & 0o777) == "0o700"
    if not Path("/run/systemd/system").is_dir():
        assert "systemd is not running" in result.stdout
    verified = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    # a database on this machine: the hub starts after it
    site.write_text(
        f"paths:\n  state: {state}\nhub:\n  db_url: postgresql://ink:x@localhost/ink\nbackend:\n  type: local\n"
    )
    ink(env, "install-service", "--unit-dir", str(units), "--name", "ink-pg")
    assert "After=network-online.target postgresql.service" in (units / "ink-pg.service").read_text()
    wrong = ink(env, "install-service", "--unit-dir", str(units), "--name", "../evil", check=False)
    assert wrong.returncode == 2 and "not a unit name" in wrong.stderr
    assert not (tmp_path / "evil.service").exists()
