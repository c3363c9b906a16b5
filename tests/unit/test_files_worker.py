"""The file worker's confinement and operations, on real folders (in-process, as this user)."""

import json
import os
import time

import pytest

from ink_services.files import paths
from ink_services.files.protocol import Refused
from ink_services.files.shares import ShareError, ShareStore
from ink_services.files.worker import Worker
from tests.helpers.samples import fits_bomb


@pytest.fixture
def area(tmp_path):
    root = tmp_path / "home"
    root.mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_text("beta")
    (root / ".hidden").write_text("h")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    return root, outside


def call(worker, op, **kw):
    try:
        return worker.handle({"op": op, **kw})
    except OSError as e:
        return e


@pytest.mark.parametrize(
    "user_path, message",
    [
        ("home/../etc", "'..'"),
        ("home/./a", "'.'"),
        ("home/a\x00b", "NUL"),
        ("", "storage area"),
        ("/", "storage area"),
        ("Home/x", "no storage area"),
        ("home/" + "x" * 256, "255 bytes"),
        ("home/" + "a/" * 3000, "too long"),
    ],
)
def test_bad_paths_are_refused(user_path, message):
    with pytest.raises(paths.PathRefused, match=message):
        paths.split(user_path)


def test_paths_split_into_area_and_parts():
    assert paths.split("home//sub/b.txt/") == ("home", ["sub", "b.txt"])
    assert paths.split("/home") == ("home", [])


def test_listing_pages_sorts_and_hides(area):
    root, _ = area
    for i in range(25):
        (root / f"f{i:02d}").write_bytes(b"x" * i)
    w = Worker({"home": str(root)})
    first = w.handle({"op": "list", "root": "home", "parts": [], "limit": 10})
    assert first["total"] == 27 and [e["name"] for e in first["entries"]][:2] == ["sub", "a.txt"]
    everything = w.handle({"op": "list", "root": "home", "parts": [], "limit": 100, "hidden": True})
    assert everything["total"] == 28 and ".hidden" in [e["name"] for e in everything["entries"]]
    by_size = w.handle(
        {"op": "list", "root": "home", "parts": [], "sort": "size", "reverse": True, "limit": 1}
    )
    assert by_size["entries"][0]["name"] in ("sub", "f24")  # a folder's size is its inode's
    second = w.handle({"op": "list", "root": "home", "parts": [], "offset": 10, "limit": 10})
    assert not {e["name"] for e in first["entries"]} & {e["name"] for e in second["entries"]}


def test_symlinks_out_of_the_area_are_never_followed(area):
    root, outside = area
    (root / "escape").symlink_to(outside)
    (root / "secret-link").symlink_to(outside / "secret.txt")
    w = Worker({"home": str(root)})
    listed = {e["name"]: e["type"] for e in w.handle({"op": "list", "root": "home", "parts": []})["entries"]}
    assert listed["escape"] == "link" and listed["secret-link"] == "link"
    for op, parts in (("open", ["secret-link"]), ("open", ["escape", "secret.txt"]), ("list", ["escape"])):
        with pytest.raises((OSError, Refused)):
            w.handle({"op": op, "root": "home", "parts": parts})
    with pytest.raises((OSError, Refused)):  # nor written through
        w.handle({"op": "partial", "root": "home", "parts": ["escape", "new.txt"], "upload_id": "abcdefgh"})
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_a_symlink_swapped_in_mid_operation_is_refused(area):
    root, outside = area
    w = Worker({"home": str(root)})
    folder = w.walk("home", ["sub"])  # an operation has walked to sub/ ...
    os.rename(root / "sub", root / "sub-old")  # ... and the folder is swapped for a link out
    (root / "sub").symlink_to(outside)
    try:
        # what was opened stays the real folder; a new walk refuses the link
        assert "b.txt" in os.listdir(folder)
        with pytest.raises((OSError, Refused)):
            w.handle({"op": "open", "root": "home", "parts": ["sub", "secret.txt"]})
    finally:
        os.close(folder)


def test_delete_and_copy_do_not_follow_links(area):
    root, outside = area
    (root / "sub" / "out").symlink_to(outside)
    w = Worker({"home": str(root)})
    w.handle({"op": "copy", "root": "home", "parts": ["sub"], "to_root": "home", "to_parts": ["sub2"]})
    assert (root / "sub2" / "b.txt").read_text() == "beta" and not (root / "sub2" / "out").exists()
    w.handle({"op": "delete", "root": "home", "parts": ["sub"]})
    assert not (root / "sub").exists() and (outside / "secret.txt").read_text() == "secret"
    with pytest.raises(Refused, match="into itself"):
        w.handle(
            {"op": "copy", "root": "home", "parts": ["sub2"], "to_root": "home", "to_parts": ["sub2", "x"]}
        )


def test_upload_commit_is_atomic_and_never_clobbers_unasked(area):
    root, _ = area
    w = Worker({"home": str(root)})
    info, fd = w.handle({"op": "partial", "root": "home", "parts": ["a.txt"], "upload_id": "up123456"})
    os.write(fd, b"new content")
    os.close(fd)
    assert (root / "a.txt").read_text() == "alpha"  # the target is untouched until commit
    with pytest.raises(FileExistsError):
        w.handle({"op": "commit", "root": "home", "parts": ["a.txt"], "upload_id": "up123456"})
    entry = w.handle(
        {"op": "commit", "root": "home", "parts": ["a.txt"], "upload_id": "up123456", "overwrite": True}
    )
    assert (root / "a.txt").read_text() == "new content" and entry["size"] == 11
    assert not [n for n in os.listdir(root) if n.startswith(".ink-upload-")]
    # resuming reopens the same partial file at its size
    _, fd = w.handle({"op": "partial", "root": "home", "parts": ["c.bin"], "upload_id": "up999999"})
    os.write(fd, b"12345")
    os.close(fd)
    info, fd = w.handle({"op": "partial", "root": "home", "parts": ["c.bin"], "upload_id": "up999999"})
    os.close(fd)
    assert info["size"] == 5


def test_unknown_operations_and_areas_are_refused(area):
    root, _ = area
    w = Worker({"home": str(root)})
    with pytest.raises(Refused, match="unknown operation"):
        w.handle({"op": "system", "root": "home", "parts": []})
    with pytest.raises(Refused, match="no storage area"):
        w.handle({"op": "list", "root": "elsewhere", "parts": []})
    with pytest.raises(Refused, match="0-0777"):
        w.handle({"op": "chmod", "root": "home", "parts": ["a.txt"], "mode": 0o4755})


def test_share_links_expire_are_revocable_and_stored_hashed(tmp_path):
    store = ShareStore(tmp_path)
    secret, link = store.create("alice", "home/a.txt", 3600, False)
    assert store.resolve(secret).path == "home/a.txt"
    assert secret not in "".join(p.read_text() + p.name for p in tmp_path.iterdir())
    with pytest.raises(ShareError) as bad:
        store.resolve(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert bad.value.status == 404
    with pytest.raises(ShareError, match="expires_in"):
        store.create("alice", "home/a.txt", 10, False)
    # expiry
    file = next(tmp_path.glob("*.json"))
    data = json.loads(file.read_text())
    data["expires"] = time.time() - 1
    file.write_text(json.dumps(data))
    with pytest.raises(ShareError) as expired:
        store.resolve(secret)
    assert expired.value.status == 410
    # revocation, only by the owner
    secret, link = store.create("alice", "home/sub", 3600, True)
    with pytest.raises(ShareError):
        store.revoke("bob", link.id)
    assert [x.id for x in store.of_owner("alice")] == [link.id]
    store.revoke("alice", link.id)
    with pytest.raises(ShareError):
        store.resolve(secret)


def test_a_decompression_bomb_costs_a_bounded_child_not_the_worker(tmp_path, monkeypatch):
    from ink_core import previews

    root = tmp_path / "home"
    root.mkdir()
    fits_bomb(root / "bomb.fits", 4000)  # 128 MiB once inflated
    assert (root / "bomb.fits").stat().st_size < 2 * 1024 * 1024
    worker = Worker({"home": str(root)})
    monkeypatch.setattr(previews, "PREVIEW_MEMORY", 64 * 1024 * 1024)
    with pytest.raises(Refused) as refused:
        worker.handle({"op": "fits", "root": "home", "parts": ["bomb.fits"]})
    assert refused.value.status == 422 and "more than 64 MiB of memory" in str(refused.value)
    # the limit is what refused it: with room, the same file previews
    monkeypatch.setattr(previews, "PREVIEW_MEMORY", 1024 * 1024 * 1024)
    answer, _, image = worker.handle({"op": "fits", "root": "home", "parts": ["bomb.fits"]})
    assert answer["image"]["shape"] == [4000, 4000] and image.startswith(b"\x89PNG")


def test_a_parser_that_never_ends_is_stopped():
    from ink_core import previews

    def spin():
        while True:
            pass

    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        previews.bounded(spin, seconds=1)
    assert "more than 1 s of CPU" in str(refused.value) and time.monotonic() - started < 10
    with pytest.raises(Refused) as refused:
        previews.bounded(time.sleep, 60, seconds=1)
    assert "took longer than 2 s" in str(refused.value)
    assert previews.bounded(lambda x: {"x": x}, 42) == {"x": 42}
    with pytest.raises(Refused) as refused:
        previews.bounded(lambda: (_ for _ in ()).throw(Refused(413, "too many keys")))
    assert refused.value.status == 413
