"""Ticket caches on disk: one FILE ccache per user, readable only by the service's account.

Files: ``<user>.ccache`` (the ticket, mode 600, replaced atomically) and ``<user>.json``
(state the service keeps: ok / renew-failed / expired, last error, counts). Never logged.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ink_core.jsonstore import JsonStore
from ink_core.names import USERNAME


class TicketStore(JsonStore):
    def ccache_path(self, username: str) -> Path:
        return self.user_path(username, ".ccache")

    def has(self, username: str) -> bool:
        return self.ccache_path(username).exists()

    def users(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.ccache"))

    def record_login(self, username: str, times: dict) -> dict:
        """A fresh ticket landed in ccache_path(username): reset its state."""
        return self.set_state(username, state="ok", error="", failures=0, **times)

    def read(self, username: str) -> bytes | None:
        try:
            return self.ccache_path(username).read_bytes()
        except FileNotFoundError:
            return None

    def state(self, username: str) -> dict:
        fresh = {"state": "ok", "error": "", "failures": 0, "renewals": 0}
        state = self.read_json(self.user_path(username), fresh)
        return state if isinstance(state, dict) else fresh

    def set_state(self, username: str, **changes) -> dict:
        state = self.state(username)
        state.update(changes)
        self.write_json(self.user_path(username), state)
        return state


def deliver_ticket(store_dir, user, target: str | None = None) -> str:
    """Copy ``user``'s ticket from the store into a file the user owns (mode 600): ``target``
    (replaced atomically, never followed if it is a symlink) or a new temporary file.
    Raises FileNotFoundError when the store holds no ticket for the user."""
    source = Path(store_dir) / f"{user.pw_name}.ccache"
    if not USERNAME.match(user.pw_name):
        raise FileNotFoundError(source)
    version = source.stat().st_mtime_ns
    if target:
        try:
            current = os.lstat(target)
            if current.st_mtime_ns == version and current.st_uid == user.pw_uid:
                return target  # already this ticket (the common case: a stat, no copy)
        except FileNotFoundError:
            pass
    data = source.read_bytes()
    folder = os.path.dirname(target) if target else None
    fd, tmp = tempfile.mkstemp(prefix=f"krb5cc_ink_{user.pw_name}_", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if os.geteuid() == 0:
                os.fchown(f.fileno(), user.pw_uid, user.pw_gid)
        if target:
            os.utime(tmp, ns=(version, version))  # the copy carries the ticket's version
            os.replace(tmp, target)
            return target
        return tmp
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
