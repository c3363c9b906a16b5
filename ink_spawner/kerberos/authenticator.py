"""Hub login with the site's Kerberos password; the renewable TGT obtained is kept."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from jupyterhub.auth import Authenticator
from traitlets import Integer, Unicode

from . import tickets
from .store import USERNAME, TicketStore


class KerberosAuthenticator(Authenticator):
    realm = Unicode(
        "", config=True, help="Kerberos realm appended to the user name (empty: the default realm)."
    )
    store_dir = Unicode(
        "",
        config=True,
        help="Ticket store shared with the credentials service (empty: verify only, keep nothing).",
    )
    renew_life = Integer(7 * 86400, config=True, help="Renewable lifetime to ask the KDC for (seconds).")

    async def authenticate(self, handler, data):
        username = self.normalize_username((data or {}).get("username", ""))
        password = (data or {}).get("password", "")
        if not USERNAME.match(username) or not password:
            return None
        principal = tickets.principal_for(username, self.realm)
        try:
            if self.store_dir:
                store = TicketStore(self.store_dir)
                times = await asyncio.to_thread(
                    tickets.login_password, principal, password, store.ccache_path(username), self.renew_life
                )
                store.record_login(username, times.to_dict())
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    await asyncio.to_thread(tickets.login_password, principal, password, Path(tmp) / "cc")
        except tickets.TicketError as e:
            self.log.warning("Kerberos login refused for %s: %s", username, e)
            return None
        return username
