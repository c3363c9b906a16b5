"""Django settings of the test OpenID Connect provider (its folder in INK_OIDC_ROOT)."""

import os
from pathlib import Path

ROOT = Path(os.environ["INK_OIDC_ROOT"])
HERE = Path(__file__).resolve().parent
SECRET_KEY = os.environ["INK_OIDC_SECRET"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.helpers.oidc_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [HERE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ROOT / "provider.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
LOGIN_URL = "/accounts/login/"
SESSION_COOKIE_NAME = "oidc_test_session"  # not the hub's cookie: both live on 127.0.0.1
CSRF_COOKIE_NAME = "oidc_test_csrf"
OIDC_USERINFO = "tests.helpers.oidc_site.claims.userinfo"
OIDC_EXTRA_SCOPE_CLAIMS = "tests.helpers.oidc_site.claims.GroupsClaims"
OIDC_IDTOKEN_INCLUDE_CLAIMS = True
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
