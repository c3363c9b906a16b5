"""A real OpenID Connect provider for the SSO tests: Django with django-oidc-provider (PyPI),
users and groups in its own SQLite file, a ``groups`` scope whose claim lists the user's
Django groups (tests/helpers/oidc.py runs it)."""
