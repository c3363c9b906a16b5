"""The file service's adapter for each kind of storage (``ink_core.areas.KINDS``): which worker
module serves a user's areas of that kind, in what environment, and what it needs before each
call. Every worker answers the same operations (``protocol.py``); ``Storage`` knows no kind by
name."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable


class Adapter:
    worker_module = ""
    on_cluster_filesystem = False  # its files are paths every batch node sees (a job can open them)

    def __init__(self, ticket_for: Callable | None = None):
        self.ticket_for = ticket_for  # user -> the path of a Kerberos ticket copy the user owns

    def present(self, location: str) -> bool:
        """Whether the user has this area (a POSIX area's folder may not exist for him)."""
        return True

    def worker_env(self, user: pwd.struct_passwd) -> dict:
        """What the worker's environment adds to the clean one (credentials, client settings)."""
        return {}

    def before_call(self, user: pwd.struct_passwd) -> None:
        """Run before each operation (a renewed ticket reaches the worker's copy)."""


class Posix(Adapter):
    """The user's uid and groups in a worker of his own: the kernel checks every access; open
    files come back as file descriptors."""

    worker_module = "ink_services.files.worker"
    on_cluster_filesystem = True

    def present(self, location: str) -> bool:
        return os.path.isdir(location)


class XRootD(Adapter):
    """The user's Kerberos ticket in a worker of his own: the XRootD server (EOS, ...) checks
    every access; file data comes back in frames."""

    worker_module = "ink_services.files.xrootd_worker"

    def worker_env(self, user):
        # the client's own fork handler: previews parse in a forked child
        extra = {"XrdSecPROTOCOL": "krb5", "XRD_RUNFORKHANDLER": "1"}
        if self.ticket_for is not None:
            extra["KRB5CCNAME"] = f"FILE:{self.ticket_for(user)}"
        return extra

    def before_call(self, user):
        if self.ticket_for is not None:
            self.ticket_for(user)


ADAPTERS = {"posix": Posix, "xrootd": XRootD}
