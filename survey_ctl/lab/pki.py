"""Keys and certificates the lab makes: the SSH key pair and the OpenVPN PKI.

Everything is made in-process with `cryptography` (no secrets on any argv): a CA, a
server and a client certificate (EC P-256), and a tls-crypt key in OpenVPN's format.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, fields
from pathlib import Path

from survey_ctl.lab.files import write_file
from survey_ctl.lab.spec import VPN_PORT, VPN_SERVER_ADDRESS, VPN_SUBNET

VALID_DAYS = 3650
SERVER_CN = "cloud"
CLIENT_CN = "surveyctl-vpn-client"


def ssh_keypair() -> tuple[str, str]:
    """A new ed25519 key pair: (private key in OpenSSH format, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, f"{public} surveyctl-lab\n"


def ensure_ssh_keypair(private_path: Path) -> str:
    """Reuse the key pair at `private_path` (and `.pub`), or make one; returns the public line."""
    public_path = private_path.with_name(private_path.name + ".pub")
    if private_path.is_file() and public_path.is_file():
        return public_path.read_text()
    private, public = ssh_keypair()
    write_file(private_path, private, 0o600)
    write_file(public_path, public, 0o644)
    return public


@dataclass(frozen=True)
class Pki:
    """PEM texts of the VPN's CA, server and client credentials, and the tls-crypt key."""

    ca_crt: str
    ca_key: str
    server_crt: str
    server_key: str
    client_crt: str
    client_key: str
    tls_crypt: str

    @staticmethod
    def file_name(field: str) -> str:
        """The file a field is kept in: `server_crt` -> `server.crt`."""
        return field.replace("tls_crypt", "tls-crypt_key").replace("_", ".")


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool, usage=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not ca,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def tls_crypt_key() -> str:
    """A new 2048-bit OpenVPN static key, as `openvpn --genkey tls-crypt` writes it."""
    hex_text = secrets.token_hex(256)
    lines = [hex_text[i : i + 32] for i in range(0, len(hex_text), 32)]
    return (
        "-----BEGIN OpenVPN Static key V1-----\n"
        + "\n".join(lines)
        + "\n-----END OpenVPN Static key V1-----\n"
    )


def make_pki() -> Pki:
    """A new CA with one server and one client certificate, and a tls-crypt key."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in "123")
    ca_cn = "surveyctl lab CA"
    return Pki(
        ca_crt=_certificate(ca_cn, ca_key, ca_cn, ca_key, ca=True),
        ca_key=_pem_key(ca_key),
        server_crt=_certificate(
            SERVER_CN, server_key, ca_cn, ca_key, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH
        ),
        server_key=_pem_key(server_key),
        client_crt=_certificate(
            CLIENT_CN, client_key, ca_cn, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH
        ),
        client_key=_pem_key(client_key),
        tls_crypt=tls_crypt_key(),
    )


def ensure_pki(directory: Path) -> Pki:
    """Reuse the PKI kept in `directory`, or make (and keep) a new one if any part is missing."""
    names = [f.name for f in fields(Pki)]
    paths = {n: directory / Pki.file_name(n) for n in names}
    if all(p.is_file() for p in paths.values()):
        return Pki(**{n: p.read_text() for n, p in paths.items()})
    pki = make_pki()
    for n, p in paths.items():
        write_file(p, getattr(pki, n), 0o600)
    return pki


def server_config() -> str:
    """The OpenVPN server's configuration on `cloud` (credentials are files beside it)."""
    network, prefix = VPN_SUBNET.split("/")
    netmask = _netmask(int(prefix))
    return f"""\
# OpenVPN server of the surveyctl lab's cloud host (made by `surveyctl lab up`)
port {VPN_PORT}
proto udp
dev tun0
topology subnet
server {network} {netmask}
ca /etc/surveyctl-lab/ca.crt
cert /etc/surveyctl-lab/server.crt
key /etc/surveyctl-lab/server.key
dh none
tls-crypt /etc/surveyctl-lab/tls-crypt.key
remote-cert-tls client
duplicate-cn
keepalive 5 30
persist-key
persist-tun
verb 3
"""


def client_profile(pki: Pki, server_address: str) -> str:
    """The client profile for the vpn host, with its certificates inline."""
    return f"""\
# OpenVPN client profile for the surveyctl lab (made by `surveyctl lab up`).
# Reaches the cloud host's tunnel address {VPN_SERVER_ADDRESS} (MariaDB).
client
dev tun0
proto udp
remote {server_address} {VPN_PORT}
nobind
resolv-retry infinite
persist-key
persist-tun
remote-cert-tls server
verify-x509-name {SERVER_CN} name
connect-retry 2 5
verb 3
<ca>
{pki.ca_crt.strip()}
</ca>
<cert>
{pki.client_crt.strip()}
</cert>
<key>
{pki.client_key.strip()}
</key>
<tls-crypt>
{pki.tls_crypt.strip()}
</tls-crypt>
"""


def _netmask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((bits >> s) & 0xFF) for s in (24, 16, 8, 0))
