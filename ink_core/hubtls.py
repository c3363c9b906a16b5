"""TLS to the hub's API from inside a job, when the hub runs with ``internal_ssl``."""

from __future__ import annotations

import os
import ssl


def hub_tls(env=os.environ) -> ssl.SSLContext | None:
    """With the hub's ``internal_ssl``: trust only the hub's CA and show this server's own
    certificate (the hub's API asks for one); None without it."""
    if not env.get("JUPYTERHUB_SSL_CERTFILE"):
        return None
    context = ssl.create_default_context(cafile=env["JUPYTERHUB_SSL_CLIENT_CA"])
    context.load_cert_chain(env["JUPYTERHUB_SSL_CERTFILE"], env["JUPYTERHUB_SSL_KEYFILE"])
    return context
