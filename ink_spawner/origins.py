"""Where users reach the hub, and the per-user origins that keep their servers apart.

A user's own server runs his code (his ``~/.jupyter``, his extensions), so a page it serves
must not run on the origin of the hub, INK's services or another user's server (SECURITY.md).
With per-user origins (JupyterHub's ``subdomain_host``) alice's server lives at
``http(s)://<alice>.<hub host>/user/alice/`` while the hub and INK's services, which are INK's
own code, stay together at ``http(s)://<hub host>/``: the hub's home page frames them, jobs and
the ``ink`` command reach them at the hub's address, and share links keep one host.

The embedded default (the hub on a loopback address) uses ``http://localhost:PORT/``: browsers
and curl resolve every ``*.localhost`` name to loopback (RFC 6761), so no DNS is needed. A site
sets ``hub.public_url`` to its host name and adds a wildcard DNS record and certificate.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from jupyterhub.utils import subdomain_hook_idna, url_escape_path

LOOPBACK = {"", "127.0.0.1", "::1", "localhost"}
ONE_ORIGIN_WARNING = (
    "hub.per_user_origins is off: every user's server shares the hub's origin, so a page one "
    "user's server serves can act for another user who opens it"
)
HUB_KEYS = {
    "ip",
    "port",
    "base_url",
    "hub_ip",
    "hub_port",
    "db_url",
    "public_url",
    "per_user_origins",
    "internal_ssl",
    "ssl_cert",
    "ssl_key",
}


class OriginError(ValueError):
    """A hub section whose per-user origins cannot work: (field, what was expected)."""

    def __init__(self, field_name: str, expected: str):
        super().__init__(expected)
        self.field, self.expected = field_name, expected


def public_url(hub: dict) -> str:
    """The URL users open (ends with the base URL): ``hub.public_url``, else
    ``http://localhost:PORT/`` for a hub on loopback, else the bind address."""
    base_url = hub.get("base_url", "/")
    if hub.get("public_url"):
        url = str(hub["public_url"]).rstrip("/") + "/"
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise OriginError("hub.public_url", "an http:// or https:// URL, e.g. https://ink.example.org/")
        if parsed.path != base_url:
            raise OriginError("hub.public_url", f"a URL whose path is the base_url {base_url!r}")
        return url
    ip = str(hub.get("ip", "127.0.0.1"))
    host = "localhost" if ip in LOOPBACK else (f"[{ip}]" if ":" in ip else ip)
    return f"{scheme(hub)}://{host}:{hub.get('port', 8000)}{base_url}"


def scheme(hub: dict) -> str:
    """https when the hub's proxy serves the site's certificate (``ssl_cert``, ``ssl_key``)."""
    return "https" if hub.get("ssl_cert") else "http"


def subdomain_host(hub: dict) -> str:
    """JupyterHub's ``subdomain_host`` (scheme://host[:port]), or "" for one origin
    (``per_user_origins: false``, not safe when users do not trust each other)."""
    if not hub.get("per_user_origins", True):
        return ""
    parsed = urlparse(public_url(hub))
    try:
        ipaddress.ip_address(parsed.hostname)
    except ValueError:
        return f"{parsed.scheme}://{parsed.netloc}"
    raise OriginError(
        "hub.public_url",
        "a host name with wildcard DNS (*.NAME) for per-user origins, not an IP address "
        "(or per_user_origins: false, which lets one user's pages act for another)",
    )


def user_url(hub: dict, name: str) -> str:
    """Where ``name``'s default server is served (what the hub's API will say)."""
    parsed = urlparse(public_url(hub))
    host = subdomain_hook(name, parsed.hostname, "user") if subdomain_host(hub) else parsed.hostname
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}user/{url_escape_path(name)}/"


def hub_routespec(hub: dict) -> str:
    """The hub's proxy route with per-user origins: its own host only. JupyterHub's default
    (``/``, every host) would serve the hub's login page on bob's origin too, where a cookie
    alice got by logging in there would belong to bob's pages."""
    parsed = urlparse(public_url(hub))
    return f"{parsed.hostname}{parsed.path}"


def subdomain_hook(name: str, domain: str, kind: str) -> str:
    """Users get their own host (JupyterHub's IDNA rule); INK's services stay on the hub's."""
    if kind == "service":
        return domain
    return subdomain_hook_idna(name, domain, kind)


def check_hub_section(hub: dict) -> None:
    """Flags that are not booleans and a public URL per-user origins cannot use raise
    OriginError (unknown keys: the site configurator's SECTION_KEYS, from HUB_KEYS)."""
    for key in ("per_user_origins", "internal_ssl"):
        if not isinstance(hub.get(key, True), bool):
            raise OriginError(f"hub.{key}", "true or false")
    if bool(hub.get("ssl_cert")) != bool(hub.get("ssl_key")):
        raise OriginError("hub.ssl_cert", "ssl_cert and ssl_key together (the certificate and its key)")
    subdomain_host(hub)
