"""A throwaway CA and server certificate, so the simulator can speak HTTPS like port 4443.

Real VBO servers default to a self-signed certificate; here a private CA signs a certificate
for ``127.0.0.1`` and ``localhost`` so tests can *verify* TLS by trusting the CA file, and
also see verification fail with a default client.

The ``cryptography`` package is not a halnav dependency, so the ``openssl`` command line tool
does the work (EC P-256 keys: generating them takes milliseconds, unlike RSA).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import attrs

__all__ = ["TlsMaterial", "create_tls_material"]

_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


@attrs.frozen
class TlsMaterial:
    """Paths of the generated PEM files, all inside ``directory`` (deleted by ``remove``)."""

    directory: Path
    cafile: Path
    certfile: Path
    keyfile: Path

    def server_context(self) -> ssl.SSLContext:
        """An SSL context serving the generated certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context

    def remove(self) -> None:
        """Delete the temporary directory and every key in it."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _openssl(*args: str, cwd: Path) -> None:
    executable = shutil.which("openssl")
    if executable is None:
        raise RuntimeError("TLS needs the 'openssl' command line tool on PATH")
    # Arguments are fixed strings and paths inside our own temporary directory.
    subprocess.run(  # noqa: S603  fixed argument list, no shell
        [executable, *args], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def create_tls_material() -> TlsMaterial:
    """Create a CA and a server certificate for 127.0.0.1/::1/localhost in a temp directory.

    Raises:
        RuntimeError: ``openssl`` is not installed.
        subprocess.CalledProcessError: ``openssl`` failed.
    """
    directory = Path(tempfile.mkdtemp(prefix="halnav-simulator-tls-"))
    try:
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "7",
            "-subj", "/CN=halnav simulator CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip
        _openssl(
            "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
            cwd=directory,
        )  # fmt: skip
        (directory / "server.ext").write_text(_SERVER_EXTENSIONS)
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "7", "-extfile", "server.ext",
            cwd=directory,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return TlsMaterial(
        directory=directory,
        cafile=directory / "ca.pem",
        certfile=directory / "server.pem",
        keyfile=directory / "server.key",
    )
