"""Run in a fresh interpreter by test_registry_tls_pg.py (one SoftHSM configuration per
process): open the station's registry the way the station does (``Station``, its TLS
identity from the home), report who the server says it is, then close, connect again,
and sign with the station's own python-pkcs11 session, and say where the token PIN is
not. Prints one JSON object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def main(home: Path) -> dict[str, object]:
    from hsm.roles import KeyRole
    from hsm.tls_keys import TokenEcSigner
    from tools.registry import Registry
    from tools.service.context import Station

    station = Station(home)
    station.authorize("db upgrade")
    hsm = station.hsm
    session_before = hsm.call(lambda s: s)  # python-pkcs11 opened first, as the station does
    registry = station.registry
    db = registry.connection()
    row = db.execute("SELECT current_user, ssl, client_dn FROM pg_stat_ssl "
                     "WHERE pid = pg_backend_pid()").fetchone()
    dsn = db._db.info.dsn  # type: ignore[attr-defined]
    url = registry.location
    registry.close()  # libpq's engine key released: libp11 must not C_Finalize
    again = Registry(url)  # the same process, the same registry: the station's identity
    second = again.connection().execute("SELECT current_user").fetchone()[0]
    again.close()
    version = int(json.loads((home / "registry-tls" / "enrolment.json").read_text())["key_version"])
    signer = TokenEcSigner(hsm, KeyRole.REGISTRY_TLS, version)
    signature = signer.sign(b"still signing", ec.ECDSA(hashes.SHA256()))
    signer.public_key().verify(signature, b"still signing", ec.ECDSA(hashes.SHA256()))
    session_after = hsm.call(lambda s: s)
    pin = station.home.token_config().read_pin()
    environ = Path("/proc/self/environ").read_bytes()
    cmdline = Path("/proc/self/cmdline").read_bytes()
    return {"user": row[0], "ssl": row[1], "client_dn": row[2], "second_user": second,
            "signed_after_close": True, "same_session": session_before is session_after,
            "pin_in_environ": pin.encode() in environ, "pin_in_cmdline": pin.encode() in cmdline,
            "pin_in_dsn": pin in dsn, "dsn": dsn}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
