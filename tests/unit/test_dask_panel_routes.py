"""The session's Dask dashboard route finds only the user's own clusters' sockets."""

import socket

import pytest
from tornado import web

from ink import dask_panel


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_a_running_cluster_is_found_by_its_name(home):
    folder = home / ".ink" / "dask" / "alice-ab12cd"
    folder.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "http.sock"))
    try:
        assert dask_panel.socket_of("alice-ab12cd") == str(folder / "http.sock")
    finally:
        listener.close()


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "", "x" * 101, "gone"])
def test_anything_else_is_404(home, name):
    (home / ".ink" / "dask" / "gone").mkdir(parents=True)
    (home / ".ink" / "dask" / "gone" / "http.sock").write_text("not a socket")
    with pytest.raises(web.HTTPError) as refused:
        dask_panel.socket_of(name)
    assert refused.value.status_code == 404
