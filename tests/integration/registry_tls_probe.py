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
from cryptography.hazmat.primitives.asymmetric import ec, padding


def main(home: Path) -> dict[str, object]:
    from hsm.roles import KeyRole
    from hsm.signer import TokenRsaSigner
    from hsm.tls_keys import TokenEcSigner
    from hsm.token import open_token
    from tools.registry import Registry
    from tools.registry.tls import tls_token_config
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
    # the station's own token (every key of `hsm init`, Ed25519 among them) still signs
    # in the same python-pkcs11 session, and so does the TLS token
    audit = TokenRsaSigner(hsm, KeyRole.AUDIT_SIGNER, 1)
    audit.public_key().verify(audit.sign(b"still signing", padding.PKCS1v15(), hashes.SHA256()),
                              b"still signing", padding.PKCS1v15(), hashes.SHA256())
    session_after = hsm.call(lambda s: s)
    version = int(json.loads((home / "registry-tls" / "enrolment.json").read_text())["key_version"])
    tls = TokenEcSigner(open_token(tls_token_config(station.home)), KeyRole.REGISTRY_TLS, version)
    tls.public_key().verify(tls.sign(b"tls", ec.ECDSA(hashes.SHA256())), b"tls",
                            ec.ECDSA(hashes.SHA256()))
    pins = [station.home.token_config().read_pin(), tls_token_config(station.home).read_pin()]
    environ = Path("/proc/self/environ").read_bytes()
    cmdline = Path("/proc/self/cmdline").read_bytes()
    return {"user": row[0], "ssl": row[1], "client_dn": row[2], "second_user": second,
            "signed_after_close": True, "same_session": session_before is session_after,
            "pin_in_environ": any(p.encode() in environ for p in pins),
            "pin_in_cmdline": any(p.encode() in cmdline for p in pins),
            "pin_in_dsn": any(p in dsn for p in pins), "dsn": dsn}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
