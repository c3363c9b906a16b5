"""A real OpenID Connect provider on a loopback port: django-oidc-provider (PyPI) in Django's
own server, with its SQLite file, signing key, users, groups and one client (the hub) made
through Django itself. The hub's GenericOAuthenticator talks to it exactly as to a site's SSO:
discovery of nothing, authorization code flow, token and userinfo endpoints, end-session."""

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import requests

from .net import Gone, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
SETTINGS = "tests.helpers.oidc_site.settings"

SETUP = """
import json, sys
import django
django.setup()
from django.contrib.auth.models import Group, User
from oidc_provider.models import Client, ResponseType
spec = json.load(sys.stdin)
for name, user in spec["users"].items():
    account = User.objects.create_user(name, email=f"{name}@example.org", password=user["password"])
    for group in user["groups"]:
        account.groups.add(Group.objects.get_or_create(name=group)[0])
client = Client.objects.create(
    name="INK", client_type="confidential", client_id=spec["client_id"],
    client_secret=spec["client_secret"], jwt_alg="RS256", require_consent=False, reuse_consent=True,
)
client.redirect_uris = [spec["redirect_uri"]]
client.post_logout_redirect_uris = [spec["after_logout"]]
client.scope = ["openid", "profile", "email", "groups"]
client.save()
client.response_types.add(ResponseType.objects.get(value="code"))
"""


class OIDCProvider:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = "ink-" + secrets.token_hex(4)
        self.client_secret = secrets.token_urlsafe(24)
        self.proc = None
        self.log_file = root / "provider.log"

    def env(self) -> dict:
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "INK_OIDC_ROOT": str(self.root),
            "INK_OIDC_SECRET": "test-" + secrets.token_hex(16),
        }

    def _manage(self, *argv, stdin=None):
        return subprocess.run(
            [sys.executable, "-m", "django", *argv] if argv else [sys.executable, "-c", SETUP],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    def start(self, users: dict, redirect_uri: str, after_logout: str):
        """``users``: name -> {"password": ..., "groups": [...]}; ``redirect_uri``: the hub's
        OAuth callback; ``after_logout``: where the provider's end-session may send users back."""
        import json

        self.root.mkdir(parents=True, exist_ok=True)
        self._manage("migrate", "--noinput")
        self._manage("creatersakey")
        spec = {
            "users": users,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
            "after_logout": after_logout,
        }
        self._manage(stdin=json.dumps(spec))
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "django", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._up, 60, what=f"the OpenID Connect provider (log: {self.log_file})")
        return self

    def _up(self):
        if self.proc.poll() is not None:
            raise Gone(self.log_file.read_text()[-3000:])
        try:
            r = requests.get(f"{self.url}/openid/.well-known/openid-configuration", timeout=2)
        except requests.ConnectionError:
            return False
        return r.status_code == 200

    def authenticator(self, hub_url: str, **extra) -> dict:
        """The site YAML's authenticator section for a hub at ``hub_url`` using this provider."""
        return {
            "type": "generic-oauth",
            "options": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "oauth_callback_url": f"{hub_url}/hub/oauth_callback",
                "authorize_url": f"{self.url}/openid/authorize",
                "token_url": f"{self.url}/openid/token",
                "userdata_url": f"{self.url}/openid/userinfo",
                "logout_redirect_url": f"{self.url}/openid/end-session",
                "username_claim": "preferred_username",
                "scope": ["openid", "profile", "email", "groups"],
                "login_service": "Site SSO",
            },
            **extra,
        }

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
