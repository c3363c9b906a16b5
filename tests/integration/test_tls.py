"""TLS with the site's certificate (issue 20): ``hub.ssl_cert`` and ``hub.ssl_key`` in the site
file, served by the hub's proxy; plain HTTP gets nothing from that port; the login cookie is
Secure; ``ink check`` refuses a key that others may read."""

import datetime
import ipaddress
import os

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ink_spawner.configurer import check
from tests.helpers.hub import hub_login


def self_signed(folder, *hosts):
    """A certificate for localhost, *.localhost (the users' own origins, for browsers) and
    ``hosts`` (OpenSSL matches no wildcard of a one-label name), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [
        *(x509.DNSName(h) for h in ("localhost", "*.localhost", *hosts)),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "site.crt", folder / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def test_the_hub_serves_the_sites_certificate(monkeypatch, make_hub, unix_users, tmp_path):
    # (monkeypatch first: its CA bundle stays until make_hub has stopped the hub's servers)
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # the test's clients trust the site's CA

    def with_tls(site):
        site["hub"] = {**site.get("hub", {}), "ssl_cert": str(cert), "ssl_key": str(key)}
        return site

    hub = make_hub({"type": "local"}, adjust=with_tls)
    assert hub.url.startswith("https://localhost:")
    login_page = requests.get(f"{hub.url}/hub/login", timeout=10)
    assert login_page.status_code == 200 and "password" in login_page.text
    with pytest.raises(requests.exceptions.SSLError):  # it is that certificate the proxy serves
        requests.get(f"{hub.url}/hub/login", timeout=10, verify="/etc/ssl/certs/ca-certificates.crt")
    try:
        plain = requests.get(f"http://localhost:{hub.port}/hub/login", timeout=10)
        assert plain.status_code != 200 and "password" not in plain.text
    except requests.exceptions.ConnectionError:
        pass  # the TLS port closed the plain connection
    session = hub_login(hub, "inkt_alice", unix_users["inkt_alice"])
    login_cookies = [c for c in session.cookies if c.name.startswith("jupyterhub-")]
    assert login_cookies and all(c.secure for c in login_cookies), [(c.name, c.secure) for c in login_cookies]
    assert session.get(f"{hub.url}/hub/home", timeout=10).status_code == 200

    # a key others may read: ink check says so
    assert check(hub.site_file) == []
    os.chmod(key, 0o644)
    assert any("may be read by others" in p for p in check(hub.site_file))
    os.chmod(key, 0o600)
