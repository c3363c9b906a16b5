"""docs/extending.md's walk-through, done: a backend in one file (tests/helpers/toy_backend.py)
named by its import path in the site YAML, with its own setting; an app that is only data (a
card in a copy of the profiles serving an existing program). The hub spawns the app through
the backend, the job serves it at /<app>/, and stopping the session goes through the backend
too. What the walk-through's checks refuse is tested beside it."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
import yaml

from ink_spawner.configurer import SiteConfigError, load_site_config
from ink_spawner.profiles import ProfileError, load_profiles
from tests.helpers.hub import spawn_and_wait

USER = "inkt_alice"
TOY = "tests.helpers.toy_backend.ToyBackend"
TOY_APP = {
    "display_name": "Toy viewer",
    "description": "INK's ROOT browser under another card: an app is data.",
    "icon": "🧸",
    "server_proxy": {
        "command": ["{python}", "-m", "ink_spawner.apps.rootbrowser", "--unix-socket", "{unix_socket}"],
        "unix_socket": True,
        "timeout": 60,
    },
}


def profiles_with(profiles_dir: Path, apps: dict) -> Path:
    """A copy of the test profiles (readable by the job users) with more apps."""
    root = Path(tempfile.mkdtemp(prefix="ink-toy-profiles-"))
    root.chmod(0o755)
    shutil.copytree(profiles_dir, root / "profiles")
    path = root / "profiles" / "apps.yaml"
    data = yaml.safe_load(path.read_text())
    data["apps"].update(apps)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return root / "profiles"


def test_a_toy_backend_and_a_toy_app(make_hub, profiles_dir, unix_users, tmp_path):
    journal = tmp_path / "journal.jsonl"
    journal.touch()
    journal.chmod(0o666)
    profiles = profiles_with(profiles_dir, {"toyview": TOY_APP})

    def allow_toy(site):
        site["experiments"]["juno"]["allowance"]["apps"].append("toyview")
        return site

    hub = make_hub({"type": TOY, "options": {"journal": str(journal)}}, adjust=allow_toy, profiles=profiles)
    token = hub.user_token(USER)
    spawn_and_wait(hub, USER, token, {"app": "toyview", "experiment": "juno"})
    server = hub.api("GET", f"/users/{USER}", token=token).json()["servers"][""]
    assert server["url"].endswith(f"/user/{USER}/") and server["user_options"]["app"] == "toyview"
    # the app's page at its derived default_url, through the hub, with alice's login only
    page = requests.get(
        hub.user_url(USER) + "toyview/", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert page.status_code == 200 and "ROOT" in page.text, page.status_code
    calls = [json.loads(line) for line in journal.read_text().splitlines()]
    assert calls[0]["call"] == "submit" and calls[0]["app"] == "toyview" and calls[0]["user"] == USER
    assert any(c["call"] == "status" for c in calls)

    assert hub.api("DELETE", f"/users/{USER}/server", token=token).status_code in (202, 204)
    hub.wait_stopped(USER, token)
    calls = [json.loads(line) for line in journal.read_text().splitlines()]
    assert any(c["call"] == "cancel" and c["job"] == calls[0]["job"] for c in calls), calls[-3:]


def write_site(tmp_path, backend) -> Path:
    path = tmp_path / "ink.yaml"
    path.write_text(yaml.safe_dump({"backend": backend}))
    return path


def test_what_the_walk_through_checks(tmp_path, profiles_dir):
    # a backend's own settings are checked like INK's: unknown ones and wrong types
    with pytest.raises(SiteConfigError) as e:
        load_site_config(write_site(tmp_path, {"type": TOY, "options": {"jurnal": "x"}}))
    assert e.value.field == "backend.options.jurnal" and "journal" in e.value.expected
    with pytest.raises(SiteConfigError) as e:
        load_site_config(write_site(tmp_path, {"type": "tests.helpers.toy_backend.NoSuch"}))
    assert e.value.field == "backend.type" and "import path of a Backend subclass" in e.value.expected
    with pytest.raises(SiteConfigError):  # importable, but not a backend
        load_site_config(write_site(tmp_path, {"type": "json.JSONDecoder"}))
    assert load_site_config(write_site(tmp_path, {"type": TOY})).backend["type"] == TOY
    # an app served by its job lives at /<name>/; a key that is not an app's is named
    for app, field in (
        ({**TOY_APP, "default_url": "/lab"}, "apps.toyview.default_url"),
        ({**TOY_APP, "defualts": {}}, "apps.toyview.defualts"),
        (
            {**TOY_APP, "server_proxy": {**TOY_APP["server_proxy"], "comand": []}},
            "apps.toyview.server_proxy.comand",
        ),
    ):
        with pytest.raises(ProfileError) as e:
            load_profiles(profiles_with(profiles_dir, {"toyview": app}))
        assert e.value.field == field, e.value
    profiles = load_profiles(profiles_with(profiles_dir, {"toyview": TOY_APP}))
    assert profiles.apps["toyview"].default_url == "/toyview/"
