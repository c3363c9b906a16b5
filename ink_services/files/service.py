"""The file service (hub-managed, HubOAuth): the user's storage in the browser, no job needed.

API (stable, versioned under api/v1/; PATH is ``<area>/<path inside it>``, e.g. ``home/a.txt``):
  GET    api/v1/areas                 the caller's storage areas
  GET    api/v1/list/PATH             a folder, paged: sort=name|size|mtime, order=asc|desc,
                                      offset, limit (<= 1000), hidden=0|1
  GET    api/v1/stat/PATH             one entry
  GET    api/v1/files/PATH            download (HTTP Range; a folder comes as a streamed zip);
                                      inline=1 for previews
  PUT    api/v1/files/PATH            upload, streamed; resumable with X-Ink-Upload: ID and
                                      Content-Range: bytes START-END/TOTAL; overwrite=1
  GET    api/v1/uploads/PATH?upload=ID  bytes received so far of an unfinished upload
  DELETE api/v1/uploads/PATH?upload=ID  abandon an unfinished upload
  DELETE api/v1/files/PATH            delete (a folder needs recursive=1)
  POST   api/v1/mkdir/PATH            (parents=1)
  POST   api/v1/move  {"from", "to", "overwrite"}     POST api/v1/copy  (the same)
  POST   api/v1/chmod/PATH  {"mode": 0-511}
  GET    api/v1/transfers   POST api/v1/transfers {"kind": copy|move|pull, "from"|"url", "to"}
  GET    api/v1/transfers/ID   POST api/v1/transfers/ID/cancel   DELETE api/v1/transfers/ID
  GET    api/v1/shares   POST api/v1/shares {"path", "expires_in"}   DELETE api/v1/shares/ID
WebDAV (HTTP Basic: hub user name, API token as password): dav/AREA/PATH (dav.py).
Share links (no login): s/SECRET/ (page), s/SECRET/list/SUB, s/SECRET/files/SUB.
  GET    metrics                      Prometheus, for tokens with read:metrics
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from tornado import ioloop, web

from ink_core.jsonstore import RecordStore
from ink_spawner.configurer import (
    credentials_store,
    files_settings,
    jobs_api_url,
    load_site_config,
    rate_limit,
    service_records,
)
from ink_spawner.kerberos.store import deliver_ticket
from ink_spawner.site_schema import with_defaults

from ..app import hub_look, nav_bar, service_app
from ..openapi import OpenAPIHandler
from ..process import run_service, service_prefix, start_logging
from ..ratelimit import RateLimiter
from .api import (
    AreasHandler,
    ChecksumHandler,
    ChmodHandler,
    ListHandler,
    MkdirHandler,
    MoveCopyHandler,
    PreviewHandler,
    RunNotebookHandler,
    StatHandler,
    TransferHandler,
    TransfersHandler,
)
from .dav import DavHandler
from .davlocks import LockTable
from .handler import (
    OPENAPI,
    READ_LIMIT,
    FilesHandler,
    log,
)
from .previewcache import PreviewCache
from .share_links import PublicShareHandler, ShareHandler, SharesHandler
from .shares import ShareStore
from .storage import Storage
from .transfers import Transfers
from .uploads import FileHandler, UploadsHandler


class PageHandler(FilesHandler):
    anonymous_page = True

    @web.authenticated
    def get(self):
        self.render(
            "files.html",
            prefix=self.settings["prefix"],
            xsrf=self.xsrf_token.decode(),
            user=self.username,
            share="",
            share_name="",
            share_is_dir=False,
            max_upload=self.settings["max_upload"],
            head=hub_look(self.settings["prefix"]),
            nav=nav_bar(self.current_user["name"], "files"),
        )


def npm_dir(package: str) -> str:
    """A browser package from npm (JSROOT, highlight.js), installed by scripts/install."""
    return os.path.join(sys.prefix, "node_modules", package)


def make_app(
    storage,
    shares: ShareStore,
    prefix: str,
    max_upload: int,
    max_concurrent_uploads: int,
    limiter=None,
    jobs_url: str = "",
    transfers=None,
) -> web.Application:
    return service_app(
        prefix,
        [
            ("", PageHandler),
            ("api/v1/areas", AreasHandler),
            ("api/v1/list/(.*)", ListHandler),
            ("api/v1/stat/(.*)", StatHandler),
            ("api/v1/files/(.*)", FileHandler),
            ("api/v1/uploads/(.*)", UploadsHandler),
            ("api/v1/mkdir/(.*)", MkdirHandler),
            ("api/v1/preview/(root|fits)/(.*)", PreviewHandler),
            ("api/v1/(move|copy)", MoveCopyHandler),
            ("api/v1/transfers", TransfersHandler),
            ("api/v1/transfers/([^/]+)(?:/(cancel))?", TransferHandler),
            ("api/v1/chmod/(.*)", ChmodHandler),
            ("api/v1/checksum/(.*)", ChecksumHandler),
            ("api/v1/run/(.*)", RunNotebookHandler),
            ("api/v1/shares", SharesHandler),
            ("api/v1/shares/([^/]+)", ShareHandler),
            ("s/([^/]+)/(list|files|preview/root|preview/fits)/(.*)", PublicShareHandler),
            ("s/([^/]+)/()()", PublicShareHandler),
            ("static/jsroot/(.*)", web.StaticFileHandler, {"path": npm_dir("jsroot")}),
            (
                "static/highlight/(.*)",
                web.StaticFileHandler,
                {"path": npm_dir("@highlightjs/cdn-assets")},
            ),
            ("api/v1/openapi.yaml", OpenAPIHandler, {"path": OPENAPI}),
            ("dav", DavHandler),
            ("dav/(.*)", DavHandler),
        ],
        storage=storage,
        shares=shares,
        max_upload=max_upload,
        max_concurrent_uploads=max_concurrent_uploads,
        active_uploads={},
        flushing={},
        previews=PreviewCache(),
        dav_locks=LockTable(),
        transfers=transfers,
        rate_limiter=limiter,
        jobs_url=jobs_url,
        template_path=str(Path(__file__).parent / "templates"),
    )


def main(argv=None):
    """The service, on its own section of the site file (INK_CONFIG)."""
    start_logging("ink-files")
    site = load_site_config()
    settings = files_settings(site.files)
    store = credentials_store(site) if site.credentials.get("enabled") else ""
    ticket_for = None
    if store:
        # the workers' ticket copies: one private folder per user (mode 700, the user's) inside a
        # folder of unpredictable name that others may pass through but not list (mode 711)
        tickets = tempfile.mkdtemp(prefix="ink-files-tickets-")
        os.chmod(tickets, 0o711)
        atexit.register(shutil.rmtree, tickets, True)

        def ticket_for(user):
            folder = os.path.join(tickets, str(user.pw_uid))
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.geteuid() == 0:
                os.chown(folder, user.pw_uid, user.pw_gid)
            return deliver_ticket(store, user, os.path.join(folder, "krb5cc"))

    storage = Storage(settings["areas"], ticket_for)
    transfers = Transfers(
        storage,
        RecordStore(service_records(site, "transfers")).records,
        settings["pull_allow_hosts"],
        settings["pull_ca_file"],
    )
    app = make_app(
        storage,
        ShareStore(service_records(site, "shares")),
        service_prefix("ink-files"),
        settings["max_upload"],
        settings["max_concurrent_uploads"],
        RateLimiter(*rate_limit(site)),
        jobs_api_url(site),
        transfers,
    )
    ioloop.PeriodicCallback(storage.reap_idle, 60_000).start()
    ioloop.IOLoop.current().add_callback(transfers.resume_all)  # unfinished ones go on
    # bodies up to READ_LIMIT are read and answered (413 past MAX_REQUEST_BODY); an upload's own
    # limit is set from its Content-Length (prepare)
    about = f"; areas {', '.join(storage.areas)}"
    port = with_defaults("files", site.files)["port"]
    run_service(app, log, port, READ_LIMIT, about=about, idle_connection_timeout=3600)
