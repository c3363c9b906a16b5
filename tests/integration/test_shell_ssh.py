"""The web shell's ssh mode against a real OpenSSH server and the real test KDC: the user logs in
to INK with their Kerberos password, and the shell reaches the login host with that ticket
(GSSAPI, delegated), as that user. Without a ticket there is no shell."""

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import kerberos_site
from tests.helpers.hub import login_session
from tests.helpers.shell import terminal_output
from tests.helpers.sshd import Sshd


@pytest.fixture
def sshd(kdc):
    root = Path(tempfile.mkdtemp(prefix="ink-sshd-"))
    server = Sshd(root, kdc, ["inkt_alice", "inkt_bob"]).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def test_ssh_shell_with_the_users_ticket(make_hub, kdc, sshd, unix_users):
    def adjust(site):
        site = kerberos_site(site, kdc)
        site["shell"] = {
            **site["shell"],
            "mode": "ssh",
            "hosts": ["localhost"],
            "ssh_options": [f"Port={sshd.port}", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"],
        }
        return site

    hub = make_hub({"type": "local"}, adjust=adjust)
    # a password login to INK gets the ticket the shell uses
    login_session(hub, "inkt_alice", unix_users["inkt_alice"], "/services/ink-shell/")
    url = f"ws://localhost:{hub.port}/services/ink-shell/terminal"
    alice = hub.user_token("inkt_alice")
    out = terminal_output(
        url,
        {"Authorization": f"token {alice}"},
        "echo who=$(id -un) via=${SSH_CONNECTION:+ssh}; klist; echo done-$((6*7))",
        "done-42",
        timeout=30,
    )
    assert "who=inkt_alice via=ssh" in out, out
    assert "Default principal: inkt_alice@INK.TEST" in out  # the ticket was delegated
    assert "Accepted gssapi-with-mic for inkt_alice" in (sshd.root / "sshd.log").read_text()
    # bob never gave INK his password: no ticket, no shell
    bob = hub.user_token("inkt_bob")
    out = terminal_output(url, {"Authorization": f"token {bob}"}, "id", "INK:", timeout=15)
    assert "no Kerberos ticket" in out
