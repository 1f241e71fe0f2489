"""Stop-gap station CA (a key in a root-only file) until `juki registry init-ca` exists:
writes DIR/station-ca.pem, DIR/station-ca.key.d/station-ca.key and an empty
DIR/station-crl.pem. Replaced by .ci/postgres-up as soon as the real command is there."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def main(directory: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "juki station CA (stop-gap)")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    crl = (x509.CertificateRevocationListBuilder().issuer_name(name).last_update(now)
           .next_update(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_file = directory / "station-ca.key.d" / "station-ca.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    (directory / "station-ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "station-crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
