"""Kerberos operations on ticket caches (MIT krb5 through pykrb5): log in, renew, read times."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import krb5


class TicketError(RuntimeError):
    """Kerberos said no (wrong password, unknown principal, not renewable, KDC unreachable)."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


@dataclass
class TicketTimes:
    principal: str
    starttime: int
    endtime: int
    renew_till: int

    def to_dict(self) -> dict:
        return asdict(self)


def _explain(e: Exception) -> TicketError:
    text = str(e)
    lowered = text.lower()
    if "cannot contact any kdc" in lowered or "cannot reach" in lowered or "timed out" in lowered:
        return TicketError("the Kerberos server (KDC) cannot be reached", unreachable=True)
    if (
        "preauthentication failed" in lowered
        or "password incorrect" in lowered
        or "decrypt integrity" in lowered
    ):
        return TicketError("wrong password")
    if "not found in kerberos database" in lowered or "client not found" in lowered:
        return TicketError("unknown Kerberos principal")
    if "ticket expired" in lowered:
        return TicketError("the ticket has expired")
    if "not renewable" in lowered or "renewable" in lowered:
        return TicketError("the ticket can no longer be renewed")
    return TicketError(f"Kerberos error: {text.splitlines()[0] if text else type(e).__name__}")


def _times(ctx, creds) -> TicketTimes:
    principal = krb5.unparse_name_flags(ctx, creds.client).decode()
    t = creds.times
    return TicketTimes(principal, int(t.starttime or t.authtime), int(t.endtime), int(t.renew_till))


def _write_ccache(ctx, creds, target: Path) -> None:
    """Store creds into a new FILE ccache beside ``target`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".cc-")  # mode 600
    os.close(fd)
    try:
        cache = krb5.cc_resolve(ctx, f"FILE:{tmp}".encode())
        krb5.cc_initialize(ctx, cache, creds.client)
        krb5.cc_store_cred(ctx, cache, creds)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def principal_for(username: str, realm: str) -> str:
    return f"{username}@{realm}" if realm else username


def _login(principal: str, target: Path, renew_life: int, obtain) -> TicketTimes:
    """AS exchange (``obtain`` gets the creds); the renewable TGT lands in ``target``."""
    ctx = krb5.init_context()
    try:
        princ = krb5.parse_name_flags(ctx, principal.encode())
        opt = krb5.get_init_creds_opt_alloc(ctx)
        krb5.get_init_creds_opt_set_renew_life(opt, renew_life)
        krb5.get_init_creds_opt_set_forwardable(opt, True)
        creds = obtain(ctx, princ, opt)
        _write_ccache(ctx, creds, target)
        return _times(ctx, creds)
    except krb5.Krb5Error as e:
        raise _explain(e) from None


def login_password(principal: str, password: str, target: Path, renew_life: int = 7 * 86400) -> TicketTimes:
    return _login(
        principal,
        target,
        renew_life,
        lambda ctx, princ, opt: krb5.get_init_creds_password(ctx, princ, opt, password=password.encode()),
    )


def login_keytab(principal: str, keytab: Path, target: Path, renew_life: int = 7 * 86400) -> TicketTimes:
    def obtain(ctx, princ, opt):
        return krb5.get_init_creds_keytab(
            ctx, princ, opt, keytab=krb5.kt_resolve(ctx, f"FILE:{keytab}".encode())
        )

    return _login(principal, target, renew_life, obtain)


def renew(path: Path) -> TicketTimes:
    """TGS renewal of the TGT in ``path``; the renewed ticket replaces it atomically."""
    ctx = krb5.init_context()
    try:
        cache = krb5.cc_resolve(ctx, f"FILE:{path}".encode())
        princ = krb5.cc_get_principal(ctx, cache)
        creds = krb5.get_renewed_creds(ctx, princ, cache)
        _write_ccache(ctx, creds, Path(path))
        return _times(ctx, creds)
    except krb5.Krb5Error as e:
        raise _explain(e) from None
