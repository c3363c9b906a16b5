"""Share links: made, listed and revoked by their owner; opened by anyone holding the link's
secret, read-only, below the shared path, while the owner's account exists."""

from __future__ import annotations

import time
from urllib.parse import quote

from tornado import httpclient, web

from ink_spawner.accounts import SystemAccountRefused, user_account

from ..app import hub_look, nav_bar
from . import paths
from .handler import (
    FilesHandler,
)
from .shares import ShareError, ShareStore


def share_model(link, secret: str | None, base: str) -> dict:
    model = {
        "id": link.id,
        "path": link.path,
        "created": link.created,
        "expires": link.expires,
        "is_dir": link.is_dir,
    }
    if secret is not None:
        model["url"] = f"{base}s/{secret}/"
    return model


class SharesHandler(FilesHandler):
    @property
    def shares(self) -> ShareStore:
        return self.settings["shares"]

    @web.authenticated
    def get(self):
        links = self.shares.of_owner(self.username)
        self.finish({"shares": [share_model(link, None, self.settings["prefix"]) for link in links]})

    @web.authenticated
    async def post(self):
        body = self.json_body(empty={})
        unknown = sorted(set(body) - {"path", "expires_in"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r}")
        root, parts = self.split(body.get("path"))
        entry = await self.ask("stat", root=root, parts=parts)
        if entry["type"] not in ("file", "dir"):
            raise web.HTTPError(400, "only files and folders can be shared")
        try:
            secret, link = self.shares.create(
                self.username,
                paths.join(root, parts),
                body.get("expires_in", 7 * 24 * 3600),
                entry["type"] == "dir",
            )
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.set_status(201)
        self.finish(share_model(link, secret, self.settings["prefix"]))


class ShareHandler(FilesHandler):
    @web.authenticated
    def delete(self, link_id):
        try:
            self.settings["shares"].revoke(self.username, link_id)
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        self.set_status(204)


HUB_USERS_SECONDS = 5
_hub_users: dict[str, tuple[float, bool]] = {}  # name -> (when asked, exists)


async def hub_user_exists(handler, name: str) -> bool:
    """Whether the hub still has this user (asked with the service's token, kept 5 s). A
    hub that cannot answer keeps links alive: an outage must not delete them."""
    asked, exists = _hub_users.get(name, (0.0, True))
    if time.monotonic() - asked < HUB_USERS_SECONDS:
        return exists
    try:
        await handler.hub_get(f"users/{quote(name, safe='')}")
        exists = True
    except httpclient.HTTPClientError as e:
        if e.code != 404:
            return True
        exists = False
    except OSError:
        return True
    _hub_users[name] = (time.monotonic(), exists)
    return exists


class PublicShareHandler(FilesHandler):
    """What a share link opens: read-only, confined to the shared file or folder, no login."""

    def prepare(self):
        pass  # no login, no scopes: the link's secret is the key

    def check_xsrf_cookie(self):
        pass  # read-only GETs only

    def resolve(self, secret: str, sub: str):
        try:
            link = self.settings["shares"].resolve(secret)
            root, parts = paths.split(link.path)
            extra = paths.parts_of(sub or "")
        except ShareError as e:
            raise web.HTTPError(e.status, str(e)) from None
        except paths.PathRefused as e:
            raise web.HTTPError(400, str(e)) from None
        if extra and not link.is_dir:
            raise web.HTTPError(404, "this link shares one file")
        if any(part.startswith(".") for part in extra):
            # dotfiles (.ssh, .netrc, tokens...) are never shared through a folder's link; a
            # dotfile the owner shared itself is the link's own path, which this does not touch
            raise web.HTTPError(404, "no such file in this share")
        return link, root, parts + extra

    async def check_owner(self, link) -> None:
        """A link dies with its owner's account: gone from the machine, a system account, or
        no longer a hub user. Its links are then deleted, not merely refused."""
        try:
            user_account(link.owner, "serve a share link")
            alive = await hub_user_exists(self, link.owner)
        except (KeyError, SystemAccountRefused):
            alive = False
        if not alive:
            self.settings["shares"].forget_owner(link.owner)
            raise web.HTTPError(410, "this share link's owner no longer has an account here")

    async def get(self, secret, kind, sub):
        link, root, parts = self.resolve(secret, sub)
        await self.check_owner(link)

        def inside_link(answer):  # paths as the link's holder sees them: below the shared path
            answer["path"] = "/".join(answer["path"].split("/")[len(link.path.split("/")) :])
            for entry in answer.get("entries", []):  # accounts and groups are not the visitor's business
                entry.pop("owner", None)
                entry.pop("group", None)
            return answer

        if kind == "list":
            self.finish(inside_link(await self.listing(root, parts, owner=link.owner, hidden=False)))
        elif kind == "files":
            await self.send_file(root, parts, owner=link.owner, hidden=False)
        elif kind.startswith("preview/"):
            self.finish(inside_link(await self.preview(kind.split("/")[1], root, parts, owner=link.owner)))
        else:
            self.render(
                "files.html",
                prefix=self.settings["prefix"],
                xsrf="",
                user="",
                share=secret,
                share_name=link.path.rsplit("/", 1)[-1],
                share_is_dir=link.is_dir,
                max_upload=0,
                head=hub_look(self.settings["prefix"]),
                nav=nav_bar(),
            )
