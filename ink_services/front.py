"""The production front: nginx (Debian's) terminating TLS before the hub, and sending the file
service's requests (downloads, uploads, listings) straight to the service, so that bulk data does
not squeeze through configurable-http-proxy. ``ink front-config`` prints it for the site file.

Two server blocks: the hub's host, where ``/services/ink-files/`` goes to the file service's
loopback port and everything else to the hub's proxy; and the users' own hosts (``*.HOST``,
per-user origins), which go to the hub's proxy alone (it routes them to the users' servers, and
the file service is never served on a user's origin). The file service checks every request
itself (its hub login or a token), as it does behind the hub's proxy.
"""

from __future__ import annotations

from urllib.parse import urlparse

from ink_spawner import origins
from ink_spawner.site_schema import with_defaults

FILES_PREFIX = "services/ink-files/"

PROXY_SETTINGS = """\
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;  # with its port, as the browser sent it
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $ink_connection_upgrade;
    # long transfers, terminals and notebooks' websockets
    proxy_read_timeout 1h;
    proxy_send_timeout 1h;"""

SITE = """\
# INK's front for {public_url} (written by `ink front-config`; include it in nginx's http block)
map $http_upgrade $ink_connection_upgrade {{
    default upgrade;
    ''      close;
}}
upstream ink_hub_proxy {{
    server {hub_addr};
    keepalive 32;
}}
upstream ink_files {{
    server 127.0.0.1:{files_port};
    keepalive 16;
}}
{redirect}
# the hub's host: INK's pages and APIs; the file service's data straight to the service
server {{
{listen}
    server_name {host};
{tls}
    client_max_body_size 0;  # the file service enforces files.max_upload itself
{proxy}
    location / {{
        proxy_pass http://ink_hub_proxy;
    }}
    location {base_url}{files_prefix} {{
        proxy_pass http://ink_files;
        # downloads: read from the service in large buffers, never spooled to nginx's disk
        proxy_buffers 16 1m;
        proxy_buffer_size 1m;
        proxy_busy_buffers_size 2m;
        proxy_max_temp_file_size 0;
        proxy_request_buffering off;  # uploads stream to the service (its temp file, then rename)
    }}
}}
{users}"""

USERS = """
# the users' own hosts (per-user origins): their servers, through the hub's proxy only
server {{
{listen}
    server_name *.{host};
{tls}
    client_max_body_size 0;
{proxy}
    location / {{
        proxy_pass http://ink_hub_proxy;
    }}
}}
"""

REDIRECT = """
# plain HTTP: to HTTPS
server {{
    listen 80;
    server_name {host} *.{host};
    return 301 https://$host$request_uri;
}}
"""


def nginx_site(site, cert: str = "", key: str = "", listen: str = "") -> str:
    """The front's server blocks for ``site`` (a SiteConfig). ``cert`` and ``key``: the site's
    TLS files (empty: plain HTTP, e.g. behind a load balancer that terminates TLS);
    ``listen``: nginx's listen address (default 443, or 80 without TLS)."""
    hub = site.hub
    public = urlparse(origins.public_url(hub))
    host = public.hostname
    base_url = hub.get("base_url", "/")
    ip = str(hub.get("ip", "127.0.0.1"))
    hub_addr = f"{'127.0.0.1' if ip in ('', '0.0.0.0', '::') else ip}:{hub.get('port', 8000)}"
    files_port = with_defaults("files", site.raw.get("files"))["port"]
    if bool(cert) != bool(key):
        raise ValueError("the certificate and its key together")
    port = listen or ("443" if cert else "80")
    listen_line = f"    listen {port}{' ssl' if cert else ''};"
    tls = (
        f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n"
        "    add_header Strict-Transport-Security max-age=31536000 always;"
        if cert
        else ""
    )
    values = dict(listen=listen_line, host=host, tls=tls, proxy=PROXY_SETTINGS)
    return SITE.format(
        public_url=origins.public_url(hub),
        hub_addr=hub_addr,
        files_port=files_port,
        base_url=base_url,
        files_prefix=FILES_PREFIX,
        redirect=REDIRECT.format(host=host) if cert and not listen else "",
        users=USERS.format(**values) if origins.subdomain_host(hub) else "",
        **values,
    )
