"""A certificate authority and server certificates made per run, for TLS peers.

The ``openssl`` command does the work (no shell; every call has a deadline). The CA
lives only as long as the run's folder: nothing is installed in a system trust store.
A client trusts a peer by loading :attr:`RunCA.cert_file` (e.g.
``ssl.create_default_context(cafile=...)``); each server certificate names the peer's
loopback address as an IP subjectAltName, so hostname checking works against the IP.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from harness.errors import SetupError

OPENSSL_DEADLINE: Final = 30.0
"""Seconds one openssl call may take (key generation is the slow one)."""
VALID_DAYS: Final = 2
"""The certificates only need to outlive a run."""
KEY_CURVE: Final = "prime256v1"


@dataclass(frozen=True)
class ServerCert:
    """A server key and its certificate (PEM files, the key mode 0600)."""

    key_file: Path
    cert_file: Path
    address: str


@dataclass(frozen=True)
class RunCA:
    """The run's CA: its certificate (to trust) and its key (to issue with)."""

    folder: Path
    key_file: Path
    cert_file: Path

    def issue(self, name: str, address: str) -> ServerCert:
        """Issue a server certificate for ``address`` (an IP), stored as ``name.{key,pem}``."""
        ip = ipaddress.ip_address(address)
        key = self.folder / f"{name}.key"
        csr = self.folder / f"{name}.csr"
        cert = self.folder / f"{name}.pem"
        extensions = self.folder / f"{name}.ext"
        extensions.write_text(
            "\n".join(
                (
                    "basicConstraints=critical,CA:FALSE",
                    "keyUsage=critical,digitalSignature,keyEncipherment",
                    "extendedKeyUsage=serverAuth,clientAuth",
                    f"subjectAltName=IP:{ip}",
                    "",
                )
            )
        )
        _new_key(key)
        _openssl(
            ["req", "-new", "-key", str(key), "-subj", f"/CN={ip}", "-out", str(csr)],
            what=f"certificate request for {name}",
        )
        _openssl(
            [
                "x509", "-req", "-in", str(csr), "-CA", str(self.cert_file),
                "-CAkey", str(self.key_file), "-CAcreateserial", "-days", str(VALID_DAYS),
                "-sha256", "-extfile", str(extensions), "-out", str(cert),
            ],
            what=f"certificate for {name}",
        )  # fmt: skip
        csr.unlink()
        extensions.unlink()
        return ServerCert(key_file=key, cert_file=cert, address=str(ip))


def openssl_path() -> str:
    """The ``openssl`` executable; SetupError saying how to get it when missing."""
    found = shutil.which("openssl")
    if found is None:
        raise SetupError(
            "TLS peers need the openssl command to make a certificate for the run: "
            "install it (apt-get install openssl)"
        )
    return found


def _openssl(arguments: Sequence[str], *, what: str) -> None:
    argv = [openssl_path(), *arguments]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace",
            timeout=OPENSSL_DEADLINE, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise SetupError(
            f"openssl took longer than {OPENSSL_DEADLINE:.0f} s making {what}"
        ) from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise SetupError(f"openssl failed making {what}: {' '.join(last.split())[:200]}")


def _new_key(path: Path) -> None:
    # Created 0600 before openssl writes into it, so the key is never readable by others.
    path.touch(mode=0o600, exist_ok=False)
    _openssl(
        ["genpkey", "-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{KEY_CURVE}",
         "-out", str(path)],
        what=f"key {path.name}",
    )  # fmt: skip
    os.chmod(path, 0o600)


def make_ca(folder: Path, *, name: str = "sip-harness run CA") -> RunCA:
    """Make a CA in ``folder`` (created 0700 if missing): ``ca.key`` and ``ca.pem``."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = folder / "ca.key"
    cert = folder / "ca.pem"
    _new_key(key)
    _openssl(
        [
            "req", "-new", "-x509", "-key", str(key), "-subj", f"/CN={name}",
            "-days", str(VALID_DAYS), "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", str(cert),
        ],
        what="the run's CA certificate",
    )  # fmt: skip
    return RunCA(folder=folder, key_file=key, cert_file=cert)
