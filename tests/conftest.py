import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import sync_playwright

from ink_client.api import resolve_localhost_names
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.condor import MiniPoolProcess
from tests.helpers.hub import Hub
from tests.helpers.images import build_image, image_folder
from tests.helpers.images import remove as remove_image
from tests.helpers.kdc import KDC
from tests.helpers.net import free_port, wait_for
from tests.helpers.postgres import PostgreSQL, server_bin
from tests.helpers.slurm import SlurmCluster
from tests.helpers.users import PREFIX, ensure_user, remove_user

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
OUTPUT = REPO / "test-output"
USERS = ("inkt_alice", "inkt_bob", "inkt_carol")


# users' servers live at <name>.localhost (per-user origins): resolved as Chromium and curl do
resolve_localhost_names()

# ./scripts/test (and so CI) sets this: what a run there cannot do is a failure, not a skip
STRICT = os.environ.get("INK_TEST_STRICT") == "1"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0 and STRICT:
        raise pytest.UsageError("./scripts/test runs the real-component tests: it must run as root")
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (real Unix users, Slurm)")
        for item in items:
            if "integration" in item.nodeid or "e2e" in item.nodeid:
                item.add_marker(skip)


def _leftovers(since: float) -> list[psutil.Process]:
    """Processes of test users started since ``since`` that no hub still running owns (the
    module-scoped hubs' file workers are theirs; everything else should have ended)."""
    hubs = [
        p
        for p in psutil.process_iter(["cmdline", "create_time"])
        if "jupyterhub" in " ".join(p.info["cmdline"] or []) and p.info["create_time"] < since
    ]
    owned = set()
    for hub in hubs:
        try:
            owned.update(child.pid for child in hub.children(recursive=True))
        except psutil.Error:
            continue
    found = []
    for proc in psutil.process_iter(["username", "create_time", "cmdline"]):
        try:
            if (
                (proc.info["username"] or "").startswith(PREFIX)
                and proc.info["create_time"] >= since - 1
                and proc.pid not in owned
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture(autouse=True)
def no_processes_left(request):
    """After every test that runs real users' processes: none of them may outlive it."""
    if os.geteuid() != 0 or not ("integration" in request.node.nodeid or "e2e" in request.node.nodeid):
        yield
        return
    started = time.time()
    yield
    try:
        wait_for(lambda: not _leftovers(started), 30, what="the test users' processes to end")
    except TimeoutError:
        left = _leftovers(started)
        names = [f"{p.pid} {p.info['username']} {' '.join(p.info['cmdline'] or [])[:120]}" for p in left]
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        pytest.fail("processes of test users outlived the test:\n" + "\n".join(names), pytrace=False)


@pytest.fixture
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def output_dir(request) -> Path:
    """Where a test keeps what it saw (screenshots, logs)."""
    path = OUTPUT / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="session")
def unix_users():
    passwords = {name: ensure_user(name) for name in USERS}
    yield passwords
    for name in USERS:
        remove_user(name)


@pytest.fixture(scope="session")
def slurm():
    # users' sbatch must read slurm.conf: not under pytest's private (mode 700) tmp folder
    root = Path(tempfile.mkdtemp(prefix="ink-slurm-"))
    root.chmod(0o755)
    cluster = SlurmCluster(root).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


def site_config(backend: dict) -> dict:
    """The test site: two experiments with different allowances and one special user."""
    return {
        "authenticator": {"type": "pam", "allow_all": True, "admin_users": ["inkt_carol"]},
        "backend": backend,
        "spawner": {
            "job_ip": "127.0.0.1",
            "log_dir": "{home}/.ink/logs",
            "start_timeout": 180,
            "monitor_interval": 1,
            "poll_interval": 5,  # the hub notices a job that ended within seconds, not 30
        },
        "default_allowance": {
            "apps": ["jupyterlab"],
            "images": ["host"],
            "max_cpus": 1,
            "max_memory": "2G",
            "max_walltime": "2h",
        },
        "experiments": {
            "juno": {
                "members": ["inkt_alice"],
                "allowance": {
                    "apps": [
                        "jupyterlab",
                        "rootbrowser",
                        "desktop",
                        "vscode",
                        "sshnode",
                    ],
                    "images": ["host", "alma9", "sl6"],
                    "max_cpus": 2,
                    "max_memory": "4G",
                    "max_walltime": "1d",
                },
            },
            "broken": {"members": ["inkt_carol"], "allowance": {}},
            "slow": {"members": ["inkt_alice", "inkt_carol"], "allowance": {}},
            "klist": {"members": ["inkt_alice", "inkt_bob"], "allowance": {}},
            "memhog": {"members": ["inkt_alice"], "allowance": {}},
            "batchenv": {"members": ["inkt_alice"], "allowance": {}},
        },
        "users": {"inkt_carol": {"allowance": {"max_memory": "12G"}}},
        "paths": {"profiles": str(FIXTURES / "profiles")},
        "dashboard": {"port": free_port(), "refresh": 1},
        "shell": {"port": free_port()},
        "files": {"port": free_port()},
        "jobs": {"port": free_port()},
    }


@pytest.fixture
def make_pool(tmp_path, monkeypatch):
    """The stand-in HTCondor pool with the test's settings; the hub finds it through
    INK_TEST_SCHEDD. Stopped (with every job it runs) after the test."""
    pools = []

    def make(**settings) -> MiniPoolProcess:
        folder = tmp_path / f"pool{len(pools)}"
        folder.mkdir()
        process = MiniPoolProcess(folder, **settings).start()
        pools.append(process)
        monkeypatch.setenv("INK_TEST_SCHEDD", process.url)
        return process

    yield make
    for process in pools:
        process.stop()


@pytest.fixture
def schedd(make_pool):
    """The stand-in pool with its defaults: owner mode allowed for the test users."""
    return make_pool()


def condor_backend(**options) -> dict:
    return {
        "type": "htcondor",
        "options": {
            "schedd_factory": "tests.helpers.minischedd.connect",
            "collector_factory": "tests.helpers.minischedd.connect_collector",
            "identity": "owner",
            **options,
        },
    }


@pytest.fixture(scope="session")
def test_image():
    """The test OS image's root filesystem (tests/helpers/images.py), built once per session."""
    if shutil.which("mmdebstrap") is None or shutil.which("bwrap") is None:
        message = "mmdebstrap and bubblewrap are not installed (scripts/test installs them)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    root = image_folder()
    try:
        yield build_image(root)
    finally:
        remove_image(root)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session; each test takes a fresh database of it."""
    if server_bin() is None:
        if STRICT:
            pytest.fail("PostgreSQL is not installed (scripts/test installs Debian's postgresql)")
        pytest.skip("PostgreSQL is not installed (scripts/test installs Debian's postgresql)")
    root = Path(tempfile.mkdtemp(prefix="ink-postgres-"))
    server = PostgreSQL(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def kdc(unix_users):
    """A real MIT KDC; every test user is a principal with the same password as their account."""
    root = Path(tempfile.mkdtemp(prefix="ink-kdc-"))
    server = KDC(root, lifetime="1m", renewable="10m").start()
    for name, password in unix_users.items():
        server.add_user(name, password)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def kerberos_site(site: dict, kdc, **credentials) -> dict:
    """Turn a test site into a Kerberos site: KDC login, credentials service, delivery to jobs."""
    site["authenticator"] = {"type": "kerberos", "allow_all": True, "admin_users": ["inkt_carol"]}
    site["credentials"] = {
        "enabled": True,
        "realm": "INK.TEST",
        "krb5_config": str(kdc.krb5_conf),
        "port": free_port(),
        "interval": 1,
        "retry_base": 2,
        "retry_max": 8,
        **credentials,
    }
    return site


@pytest.fixture(scope="session")
def profiles_dir():
    """The test profiles in a folder job users can read, with a slow experiment set-up."""
    root = Path(tempfile.mkdtemp(prefix="ink-profiles-"))
    root.chmod(0o755)
    shutil.copytree(FIXTURES / "profiles", root / "profiles")
    slow = root / "slow-setup.sh"
    slow.write_text("sleep 14\nexport INK_SLOW=1\n")
    slow.chmod(0o644)
    (root / "profiles" / "experiments" / "slow.yaml").write_text(f"name: slow\nsetup: {slow}\n")
    # a job that watches its Kerberos ticket: klist every 5 s into ~/klist.log
    klist = root / "klist-setup.sh"
    klist.write_text('(while true; do date +%s; klist; sleep 5; done >> "$HOME/klist.log" 2>&1 &)\n')
    klist.chmod(0o644)
    (root / "profiles" / "experiments" / "klist.yaml").write_text(f"name: klist\nsetup: {klist}\n")
    # a job that allocates memory on the test's signal: ~/memhog.go holds the number of
    # 100 MiB steps; after each step it touches ~/memhog.stepN and waits 3 s
    hog = root / "memhog-setup.sh"
    hog.write_text(
        "/usr/bin/python3 -c 'import os, time\n"
        'go = os.path.expanduser("~/memhog.go")\n'
        "while not os.path.exists(go): time.sleep(0.1)\n"
        "time.sleep(0.2); steps = int(open(go).read().strip() or 6); kept = []\n"
        "for i in range(steps):\n"
        "    kept.append(bytearray(100 * 1024 * 1024))\n"
        '    open(os.path.expanduser(f"~/memhog.step{i + 1}"), "w").close(); time.sleep(3)\n'
        "time.sleep(3600)' </dev/null >/dev/null 2>&1 &\n"
    )
    hog.chmod(0o644)
    (root / "profiles" / "experiments" / "memhog.yaml").write_text(f"name: memhog\nsetup: {hog}\n")
    # an experiment whose set-up exports a variable (batch jobs source it as sessions do)
    batchenv = root / "batchenv-setup.sh"
    batchenv.write_text('export INK_FROM_SETUP="set up for $USER"\n')
    batchenv.chmod(0o644)
    (root / "profiles" / "experiments" / "batchenv.yaml").write_text(
        f"name: batchenv\nsetup: {batchenv}\nenv:\n  INK_EXPERIMENT_NAME: BATCHENV\n"
    )
    yield root / "profiles"
    shutil.rmtree(root, ignore_errors=True)


# INK_TEST_DB=postgresql: every hub of the run on a fresh PostgreSQL database (production's),
# instead of the embedded default's SQLite file
TEST_DB = os.environ.get("INK_TEST_DB", "sqlite")


@pytest.fixture
def make_hub(request, tmp_path, unix_users, profiles_dir):
    hubs = []

    def make(backend: dict, adjust=None, profiles=None) -> Hub:
        site = site_config(backend)
        if TEST_DB == "postgresql":
            site.setdefault("hub", {})["db_url"] = request.getfixturevalue("postgres").new_database()
        if adjust is not None:
            site = adjust(site)
        site["paths"]["profiles"] = str(profiles or profiles_dir)
        hub = Hub(tmp_path / f"hub{len(hubs)}", site).start()
        hubs.append(hub)
        return hub

    yield make
    problems = []
    for hub in hubs:  # every hub is stopped, whatever happened to the one before
        try:
            hub.stop_servers(USERS)
        except Exception as e:  # noqa: BLE001 - reported after every hub is down
            problems.append(f"{hub.workdir}: servers did not stop: {e}")
        finally:
            hub.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
