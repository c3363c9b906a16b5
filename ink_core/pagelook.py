"""The hub's look for every page INK serves: the hub's stylesheet and dark mode, its
navigation bar. Service pages are on the hub's origin (``hub`` is its base URL, ``/``); the app
pages INK serves inside a job are on the user's own origin (``hub`` is the hub's full URL, from
``INK_HUB``): the hub's static files are public, so they load there too."""

from __future__ import annotations

import os
from html import escape

# a panel the hub's home page frames has no toggle of its own: it follows the hub's choice
FOLLOW_THEME = (
    "<script>document.documentElement.setAttribute('data-bs-theme', localStorage.getItem("
    "'jupyterhub-bs-theme') || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));</script>"
)


def hub_base(hub: str) -> str:
    """``hub`` ending in one slash."""
    return hub.rstrip("/") + "/"


def hub_look(hub: str, prefix: str = "", framed: bool = False) -> str:
    """The <head> lines: the hub's stylesheet and dark mode (before anything paints; the hub's
    own toggle script, or for a ``framed`` panel the hub's stored choice); with a service's
    ``prefix``, INK's shared stylesheet and fetch helper too."""
    base = escape(hub_base(hub))
    theme = FOLLOW_THEME if framed else f'<script src="{base}hub/static/js/darkmode.js"></script>'
    lines = [theme, f'<link rel="stylesheet" href="{base}hub/static/css/style.min.css">']
    if prefix:
        prefix = escape(prefix)
        lines += [
            f'<link rel="stylesheet" href="{prefix}static/ink/ink-page.css">',
            f'<script src="{prefix}static/ink/ink-api.js"></script>',
        ]
    return "\n".join(lines)


def nav_bar(hub: str, user: str = "", active: str = "") -> str:
    """The hub's navigation bar as INK's pages show it (templates/page.html): the brand back to
    the hub, INK's pages, the dark-mode toggle (the hub's own darkmode.js), the user and
    Logout. Without a user (a share link's visitor): the brand and the toggle only."""
    base = escape(hub_base(hub))
    links = []
    if user:
        for key, label, href in (
            ("home", "Home", f"{base}hub/home"),
            ("files", "Files", f"{base}services/ink-files/"),
            ("shell", "Shell", f"{base}services/ink-shell/"),
            ("history", "History", f"{base}hub/ink/history"),
            ("token", "Token", f"{base}hub/token"),
        ):
            current = ' active" aria-current="page' if key == active else ""
            links.append(
                f'<li class="nav-item"><a class="nav-link{current}" id="ink-nav-{key}" href="{href}">{label}</a></li>'
            )
    who = (
        f'<span class="me-2">{escape(user)}</span>'
        f'<a id="logout" class="btn btn-sm btn-outline-secondary" href="{base}hub/logout">Logout</a>'
        if user
        else ""
    )
    return (
        '<nav class="navbar navbar-expand-sm bg-body-tertiary mb-3"><div class="container-fluid">'
        f'<a class="navbar-brand ink-brand" href="{base}hub/home" title="INK home">INK '
        "<small>Interactive aNalysis worKbench</small></a>"
        f'<ul class="navbar-nav me-auto mb-0">{"".join(links)}</ul>'
        '<div class="d-flex align-items-center">'
        '<button class="btn btn-sm me-2" id="dark-theme-toggle" type="button" aria-label="Toggle dark mode" '
        'title="Toggle dark mode">◐</button>'
        f"{who}</div></div></nav>"
    )


def in_job() -> tuple[str, str]:
    """Inside a session's job: the hub as users reach it and the user (for the app pages)."""
    return os.environ.get("INK_HUB", "") or "/", os.environ.get("JUPYTERHUB_USER", "")
