"""What the `ink` command needs to talk to a hub: stored tokens, the jobs and files APIs,
transfers that resume where they stopped, and exit codes scripts can rely on."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlparse

import requests

FILES = "/services/ink-files/api/v1/"
JOBS = "/services/ink-jobs/api/v1/"
CHUNK = 64 * 1024 * 1024

# exit codes: documented in `ink --help` and the README
OK, FAILED, USAGE, AUTH, NOT_FOUND, CONFLICT, REFUSED, UNAVAILABLE = 0, 1, 2, 3, 4, 5, 6, 7


class ClientError(Exception):
    def __init__(self, message: str, code: int = FAILED):
        super().__init__(message)
        self.code = code


def exit_code_for(status: int) -> int:
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status == 409:
        return CONFLICT
    if 400 <= status < 500:
        return REFUSED
    return UNAVAILABLE


def resolve_localhost_names() -> None:
    """Resolve ``*.localhost`` to loopback in this process, as browsers and curl do (RFC 6761
    6.3): a hub on ``localhost`` serves each user's server at ``<user>.localhost``."""
    if getattr(socket.getaddrinfo, "ink_localhost", False):
        return
    original = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
            host = "localhost"
        return original(host, *args, **kwargs)

    getaddrinfo.ink_localhost = True
    socket.getaddrinfo = getaddrinfo


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ink" / "tokens.json"


def load_tokens() -> dict:
    try:
        return json.loads(config_path().read_text())
    except (OSError, ValueError):
        return {}


def save_token(hub: str, token: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tokens = load_tokens()
    tokens[hub] = token
    tokens["default"] = hub
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f)
    os.replace(tmp, path)


def encode_path(path: str) -> str:
    return "/".join(quote(p, safe="") for p in path.strip("/").split("/"))


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal, or when asked)."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.start, self.last = time.monotonic(), 0.0

    def update(self, done: int, force: bool = False):
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.2 and not force):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-6) / 2**20
        share = done / self.total if self.total else 1
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {done / 2**20:8.1f} MiB {rate:7.1f} MiB/s")
        sys.stderr.flush()

    def finish(self, done: int):
        if self.enabled:
            self.update(done, force=True)
            sys.stderr.write("\n")


class Client:
    def __init__(self, hub: str | None = None, token: str | None = None, progress: bool | None = None):
        tokens = load_tokens()
        self.hub = (hub or os.environ.get("INK_HUB") or tokens.get("default") or "").rstrip("/")
        if not self.hub:
            raise ClientError("no hub: run `ink login HUB_URL` first (or pass --hub)", AUTH)
        self.token = token or os.environ.get("INK_TOKEN") or tokens.get(self.hub)
        if not self.token and self.hub == os.environ.get("INK_HUB", "").rstrip("/"):
            self.token = os.environ.get("JUPYTERHUB_API_TOKEN")  # in a session INK started
        if not self.token:
            raise ClientError(f"not logged in to {self.hub}: run `ink login {self.hub}`", AUTH)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self.progress = sys.stderr.isatty() if progress is None else progress

    def request(self, method: str, path: str, ok=(200,), **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        try:
            r = self.session.request(method, self.hub + path, allow_redirects=False, **kwargs)
        except requests.ConnectionError as e:
            raise ClientError(f"cannot reach {self.hub}: {e.__class__.__name__}", UNAVAILABLE) from None
        except requests.Timeout:
            raise ClientError(f"{self.hub} did not answer in time", UNAVAILABLE) from None
        if r.status_code in ok:
            return r
        if r.status_code in (301, 302, 303, 307):
            raise ClientError("the hub asked for a login: the token is wrong or expired", AUTH)
        try:
            message = r.json().get("message") or r.reason
        except ValueError:
            message = r.reason or f"HTTP {r.status_code}"
        raise ClientError(f"{message} (HTTP {r.status_code})", exit_code_for(r.status_code))

    def whoami(self) -> dict:
        return self.request("GET", "/hub/api/user").json()

    def server_url(self, user: str, server: str = "") -> str:
        """A running server's URL as the hub gives it: on the user's own origin with per-user
        origins (http://USER.HUB/user/USER/), else a path on the hub's."""
        model = self.request("GET", f"/hub/api/users/{quote(user, safe='')}").json()
        entry = (model.get("servers") or {}).get(server)
        if not entry or not entry.get("ready"):
            name = f"{user}/{server}" if server else user
            raise ClientError(f"{name} has no running server: start it on the hub first", NOT_FOUND)
        url = entry["url"]
        if "://" in url:
            return url
        parsed = urlparse(self.hub)
        return f"{parsed.scheme}://{parsed.netloc}{url}"

    # -- jobs ---------------------------------------------------------------------------------
    def submit(self, body: dict) -> dict:
        return self.request("POST", JOBS + "jobs", ok=(201,), json=body).json()

    def jobs(self, state: str = "") -> list[dict]:
        return self.request("GET", JOBS + "jobs", params={"state": state} if state else None).json()["jobs"]

    def job(self, job_id: str) -> dict:
        return self.request("GET", JOBS + f"jobs/{quote(job_id, safe='')}").json()

    def cancel(self, job_id: str, task: int | None = None) -> dict:
        """The job, or one task of an array (``task``: its index)."""
        params = {"task": str(task)} if task is not None else None
        return self.request(
            "DELETE", JOBS + f"jobs/{quote(job_id, safe='')}", ok=(202,), params=params
        ).json()

    def output(self, job_id: str, stream: str, tail: int | None, out, task: int | None = None) -> None:
        params = {"tail": str(tail)} if tail else {}
        if task is not None:
            params["task"] = str(task)
        r = self.request("GET", JOBS + f"jobs/{quote(job_id, safe='')}/{stream}", params=params, stream=True)
        for chunk in r.iter_content(1024 * 1024):
            out.write(chunk)

    # -- files --------------------------------------------------------------------------------
    def ls(self, path: str, hidden: bool = False) -> dict:
        entries, offset = [], 0
        while True:
            params = {"offset": offset, "limit": 1000, "hidden": int(hidden)}
            page = self.request("GET", FILES + "list/" + encode_path(path), params=params).json()
            entries += page["entries"]
            offset += len(page["entries"])
            if offset >= page["total"] or not page["entries"]:
                return {"path": page["path"], "total": page["total"], "entries": entries}

    def mkdir(self, path: str, parents: bool) -> dict:
        params = {"parents": 1} if parents else None
        return self.request("POST", FILES + "mkdir/" + encode_path(path), ok=(201,), params=params).json()

    def rm(self, path: str, recursive: bool) -> None:
        params = {"recursive": 1} if recursive else None
        self.request("DELETE", FILES + "files/" + encode_path(path), ok=(204,), params=params)

    def share(self, path: str, seconds: int) -> dict:
        link = self.request(
            "POST", FILES + "shares", ok=(201,), json={"path": path, "expires_in": seconds}
        ).json()
        link["url"] = self.hub + link["url"]
        return link

    def put(self, source: Path, target: str, overwrite: bool = False) -> dict:
        """Upload in chunks; an interrupted upload of the same file resumes where it stopped."""
        size = source.stat().st_size
        stamp = f"{source.resolve()}|{size}|{source.stat().st_mtime_ns}|{self.hub}|{target}"
        upload_id = "cli-" + hashlib.sha256(stamp.encode()).hexdigest()[:40]
        url = FILES + "files/" + encode_path(target)
        status = self.request("GET", FILES + "uploads/" + encode_path(target), params={"upload": upload_id})
        start = resumed = status.json()["received"]
        progress = Progress(f"put {target}", size, self.progress)
        params = {"overwrite": 1} if overwrite else None
        with open(source, "rb") as f:
            while True:
                f.seek(start)
                data = f.read(CHUNK)
                headers = {"X-Ink-Upload": upload_id}
                if size:
                    headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
                r = self.request(
                    "PUT", url, ok=(201, 202), data=data, headers=headers, params=params, timeout=600
                )
                answer = r.json()
                if r.status_code == 201:
                    progress.finish(size)
                    return {**answer, "resumed_from": resumed}
                start = answer["received"]
                progress.update(start)

    def get(self, path: str, dest: Path) -> dict:
        """Download to dest; an interrupted download resumes from what dest's .ink-part holds."""
        part = dest.with_name(dest.name + ".ink-part")
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = FILES + "files/" + encode_path(path)
        r = self.request("GET", url, ok=(200, 206, 416), headers=headers, stream=True, timeout=600)
        if r.status_code == 416:  # the part is already whole
            total = have
        else:
            if r.status_code == 200:
                have = 0  # the server sent everything: start over
            total = int(r.headers.get("Content-Range", "/0").rsplit("/", 1)[-1] or 0) or have + int(
                r.headers.get("Content-Length", 0)
            )
            progress = Progress(f"get {path}", total, self.progress)
            done = have
            with open(part, "ab" if have else "wb") as f:
                for chunk in r.iter_content(4 * 1024 * 1024):
                    f.write(chunk)
                    done += len(chunk)
                    progress.update(done)
            progress.finish(done)
        os.replace(part, dest)
        return {"path": path, "dest": str(dest), "size": dest.stat().st_size, "resumed_from": have}
