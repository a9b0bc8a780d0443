"""The lab's pure pieces (no machine, no root): PKI, profiles, topology, specs, files."""

from __future__ import annotations

import stat
from pathlib import Path

from survey_ctl.lab import machines, pki, topology_writer, wheels
from survey_ctl.lab.files import write_file
from survey_ctl.lab.spec import HOSTS, host


def test_pki_chains_to_the_ca_with_the_right_usages() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    made = pki.make_pki()
    ca = x509.load_pem_x509_certificate(made.ca_crt.encode())
    for pem, usage in (
        (made.server_crt, ExtendedKeyUsageOID.SERVER_AUTH),
        (made.client_crt, ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        cert = x509.load_pem_x509_certificate(pem.encode())
        ca.public_key().verify(
            cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm)
        )
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [usage]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    lines = made.tls_crypt.strip().splitlines()
    assert lines[0] == "-----BEGIN OpenVPN Static key V1-----"
    assert len(lines) == 18 and all(len(line) == 32 for line in lines[1:-1])


def test_pki_and_keys_are_kept_and_reused(tmp_path: Path) -> None:
    first = pki.ensure_pki(tmp_path / "pki")
    assert pki.ensure_pki(tmp_path / "pki") == first
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600
    public = pki.ensure_ssh_keypair(tmp_path / "id_ed25519")
    assert public.startswith("ssh-ed25519 ")
    assert pki.ensure_ssh_keypair(tmp_path / "id_ed25519") == public


def test_client_profile_uses_tls_crypt_and_certificates_not_a_static_key() -> None:
    profile = pki.client_profile(pki.make_pki(), "172.31.56.20")
    assert "remote 172.31.56.20 1194" in profile
    for block in ("ca", "cert", "key", "tls-crypt"):
        assert f"<{block}>" in profile and f"</{block}>" in profile
    assert "\nsecret " not in profile and "remote-cert-tls server" in profile
    assert "dh none" in pki.server_config() and "tls-crypt" in pki.server_config()


def test_secrets_are_made_once_then_reused(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    first = topology_writer.ensure_secrets(env)
    assert set(first) == set(topology_writer.SECRET_NAMES)
    assert topology_writer.ensure_secrets(env) == first
    assert stat.S_IMODE(env.stat().st_mode) == 0o600


def test_setup_sql_quotes_the_password() -> None:
    sql = topology_writer.setup_sql({"SURVEY_DB_PASSWORD": "a'b\\c"})
    assert "IDENTIFIED BY 'a''b\\\\c'" in sql
    assert "CREATE USER IF NOT EXISTS 'survey'@'%'" in sql


def test_topology_refers_to_secrets_and_lab_images(tmp_path: Path) -> None:
    topo = topology_writer.topology(tmp_path, Path("/repo"))
    assert topo["redis"]["password"] == "${SURVEY_REDIS_PASSWORD}"
    assert topo["app"]["build"]["context"] == "/repo"
    assert topo["vpn"]["client_config"] == str(tmp_path / "client.ovpn")
    assert [h["name"] for h in topo["hosts"]] == ["lb", "app1", "app2"]
    assert all(v.startswith("surveyctl-lab/") for v in (topo["lb"]["image"], topo["vpn"]["image"]))


def test_machine_spec_changes_only_with_its_inputs(tmp_path: Path) -> None:
    vm = host("app1")
    spec = machines.MachineSpec(vm, "sha256:1", tmp_path, "c1")
    assert spec.digest() == machines.MachineSpec(vm, "sha256:1", tmp_path, "c1").digest()
    assert spec.digest() != machines.MachineSpec(vm, "sha256:2", tmp_path, "c1").digest()
    assert spec.digest() != machines.MachineSpec(vm, "sha256:1", tmp_path, "c2").digest()
    assert "ALL" in spec.host_config_args()["cap_add"]
    cloud = machines.MachineSpec(host("cloud"), "sha256:1", tmp_path, "c1")
    assert cloud.host_config_args()["cap_add"] == ["NET_ADMIN"]
    assert len({h.address for h in HOSTS}) == len(HOSTS)


def test_wheel_download_targets_the_image_python(tmp_path: Path) -> None:
    env = {"python_version": "3.11", "python_full_version": "3.11.2"}
    argv = wheels.pip_download_argv(tmp_path / "requirements.txt", tmp_path, env)
    assert argv[argv.index("--python-version") + 1] == "3.11.2"
    assert "cp311" in argv and "manylinux_2_36_x86_64" in argv
    assert "--only-binary=:all:" in argv


def test_write_file_leaves_unchanged_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "f"
    assert write_file(path, "x", 0o600)
    mtime = path.stat().st_mtime_ns
    assert not write_file(path, "x", 0o600)
    assert path.stat().st_mtime_ns == mtime
    assert write_file(path, "y", 0o600)
