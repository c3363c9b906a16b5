"""The file service's JSON API: areas, listings, stat, checksums, previews, folders, move and
copy, permissions, and "Run as batch job" on a notebook."""

from __future__ import annotations

import json
import os

from tornado import httpclient, web

from ink_core import checksums

from . import paths
from .handler import (
    FilesHandler,
)
from .storage import StorageError


class AreasHandler(FilesHandler):
    @web.authenticated
    async def get(self):
        try:
            areas = await self.storage.run(self.username, self.storage.areas_of, self.username)
        except StorageError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.finish({"user": self.username, "areas": areas})


class ListHandler(FilesHandler):
    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        self.finish(await self.listing(root, parts))


class StatHandler(FilesHandler):
    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        entry = await self.ask("stat", root=root, parts=parts)
        url = await self.storage.run(self.username, self.storage.url_of, self.username, root, parts)
        self.finish({"path": paths.join(root, parts), **entry, "url": url})


class ChecksumHandler(FilesHandler):
    """adler32 (as XRootD and FTS use it) or sha256 of a file, on request; remembered for the
    file's size and time."""

    @web.authenticated
    async def get(self, user_path):
        root, parts = self.split(user_path)
        algorithm = self.get_argument("algorithm", "adler32")
        if algorithm not in checksums.ALGORITHMS:
            raise web.HTTPError(400, f"algorithm: expected one of {', '.join(checksums.ALGORITHMS)}")
        answer = await self.ask("checksum", root=root, parts=parts, algorithm=algorithm)
        self.finish({"path": paths.join(root, parts), **answer})


class RunNotebookHandler(FilesHandler):
    """ "Run as batch job" on a notebook: submitted to the jobs API with the caller's own token
    (so the jobs service applies the user's limits, image and experiment rules), from the
    caller's home, where the jobs API takes notebooks."""

    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        if not parts or not parts[-1].endswith(".ipynb"):
            raise web.HTTPError(400, "only a notebook (.ipynb) runs as a batch job")
        url, token = self.settings.get("jobs_url"), self.hub_auth.get_token(self)
        if not url:
            raise web.HTTPError(404, "this site runs no batch jobs (the jobs service is off)")
        if self.username != self.current_user["name"]:
            raise web.HTTPError(403, "a notebook runs as a batch job of its owner only: ask them to run it")
        entry = await self.ask("stat", root=root, parts=parts)
        if entry.get("type") != "file":
            raise web.HTTPError(400, "only a notebook (.ipynb) runs as a batch job")
        if not self.storage.on_cluster_filesystem(root):
            raise web.HTTPError(400, "a notebook runs as a batch job from your home, not from this area")
        area = await self.storage.run(self.username, self.storage.url_of, self.username, root, [])
        notebook = os.path.relpath(os.path.join(area, *parts), self.storage.user(self.username).pw_dir)
        if notebook.startswith("..") or os.path.isabs(notebook):
            raise web.HTTPError(400, "a notebook runs as a batch job from your home, not from this area")
        job, code = await submit_job(url, token, {**self.json_body(empty={}), "notebook": notebook})
        if code != 201:
            raise web.HTTPError(code, job.get("message", "the jobs service refused the job"))
        # where its logs and the executed copy are, as this page names paths ("" if elsewhere)
        folder = os.path.relpath(job["output_dir"], area)
        job["folder"] = "" if folder.startswith("..") else paths.join(root, folder.split("/"))
        self.set_status(201)
        self.finish(job)


async def submit_job(url: str, token: str, body: dict) -> tuple[dict, int]:
    """POST a job to the jobs API as the token's user: (answer, status code)."""
    request = httpclient.HTTPRequest(
        url,
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        request_timeout=60,
    )
    try:
        response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
    except OSError as e:
        return {"message": f"the jobs service is unreachable ({e})"}, 503
    try:
        answer = json.loads(response.body or b"{}")
    except ValueError:
        answer = {}
    if response.code == 599:  # no answer (refused, timed out)
        return {"message": "the jobs service did not answer"}, 503
    return answer, response.code


class PreviewHandler(FilesHandler):
    @web.authenticated
    async def get(self, kind, user_path):
        root, parts = self.split(user_path)
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.preview(kind, root, parts))


class MkdirHandler(FilesHandler):
    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        if not parts:
            raise web.HTTPError(400, "name the new folder")
        entry = await self.ask("mkdir", root=root, parts=parts, parents=self.flag("parents"))
        self.set_status(201)
        self.finish({"path": paths.join(root, parts), **entry})


class MoveCopyHandler(FilesHandler):
    """move and copy: {"from": PATH, "to": PATH, "overwrite": false}"""

    @web.authenticated
    async def post(self, op):
        body = self.json_body(empty={})
        unknown = sorted(set(body) - {"from", "to", "overwrite"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        root, parts = self.split(body.get("from"))
        to_root, to_parts = self.split(body.get("to"))
        if not parts or not to_parts:
            raise web.HTTPError(400, "from and to must be paths inside storage areas")
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, "overwrite: expected true or false")
        entry = await self.ask(
            {"move": "rename", "copy": "copy"}[op],
            root=root,
            parts=parts,
            to_root=to_root,
            to_parts=to_parts,
            overwrite=overwrite,
        )
        self.finish({"path": paths.join(to_root, to_parts), **entry})


class ChmodHandler(FilesHandler):
    @web.authenticated
    async def post(self, user_path):
        root, parts = self.split(user_path)
        mode = self.json_body(empty={}).get("mode")
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
            raise web.HTTPError(400, "mode: expected permission bits, 0 to 511 (0o777)")
        self.finish(
            {"path": paths.join(root, parts), **await self.ask("chmod", root=root, parts=parts, mode=mode)}
        )


class TransfersHandler(FilesHandler):
    """Background transfers: GET the caller's; POST {"kind": "copy"|"move", "from", "to",
    "overwrite"} or {"kind": "pull", "url", "to", "overwrite"}."""

    @property
    def transfers(self):
        return self.settings["transfers"]

    @web.authenticated
    async def get(self):
        self.set_header("Cache-Control", "no-store")
        self.finish({"transfers": [t.public() for t in self.transfers.of_user(self.username)]})

    @web.authenticated
    async def post(self):
        body = self.json_body()
        allowed = {"kind", "to", "overwrite", "url" if body.get("kind") == "pull" else "from"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        overwrite = body.get("overwrite", False)
        if not isinstance(overwrite, bool):
            raise web.HTTPError(400, "overwrite: expected true or false")
        source = body.get("url") if body.get("kind") == "pull" else body.get("from")
        transfer = await self.transfers.submit(
            self.username, body.get("kind"), source, body.get("to"), overwrite
        )
        self.set_status(201)
        self.finish(transfer.public())


class TransferHandler(TransfersHandler):
    """GET one transfer; POST .../cancel; DELETE a finished one from the list."""

    @web.authenticated
    async def get(self, transfer_id, action=None):
        self.finish(self.transfers.get(self.username, transfer_id).public())

    @web.authenticated
    async def post(self, transfer_id, action=None):
        if action != "cancel":
            raise web.HTTPError(404, "no such route")
        self.finish(self.transfers.cancel(self.username, transfer_id).public())

    @web.authenticated
    async def delete(self, transfer_id, action=None):
        if action:
            raise web.HTTPError(404, "no such route")
        self.transfers.forget(self.username, transfer_id)
        self.set_status(204)
