"""The one store of small JSON records every service keeps per user: names checked, files
private and replaced whole, a damaged file read as missing."""

import stat

import pytest

from ink_core.jsonstore import JsonStore


def test_records_round_trip_privately(tmp_path):
    store = JsonStore(tmp_path / "store")
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == 0o700
    path = store.user_path("alice")
    store.write_json(path, {"theme": "dark"})
    assert store.read_json(path) == {"theme": "dark"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.startswith(".ink-")]  # no temp left


@pytest.mark.parametrize("name", ["../alice", "Alice", "", "a/b", "x" * 40, None, ".hidden"])
def test_only_user_names_make_paths(tmp_path, name):
    with pytest.raises(ValueError):
        JsonStore(tmp_path).user_path(name)


def test_a_damaged_record_reads_as_missing(tmp_path):
    store = JsonStore(tmp_path)
    (tmp_path / "bob.json").write_text("{not json")
    store.write_json(store.user_path("carol"), [1, 2])
    assert store.read_json(tmp_path / "bob.json", "default") == "default"
    assert store.read_json(tmp_path / "nobody.json") is None
    assert dict(store.all()) == {tmp_path / "carol.json": [1, 2]}
