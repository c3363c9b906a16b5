"""Fixtures of the file service's modules (each module starts its own hub, named ``hub``)."""

import pytest

from tests.conftest import USERS
from tests.helpers.storagehub import start_xrootd, stop_xrootd


@pytest.fixture(scope="module")
def xrootd(kdc):
    """An XRootD server with Kerberos logins, for a module's XRootD areas."""
    server = start_xrootd(kdc)
    yield server
    stop_xrootd(server)


@pytest.fixture(scope="module")
def tokens(hub):
    """An API token of each test user, from the module's hub."""
    return {name: hub.user_token(name) for name in USERS}
