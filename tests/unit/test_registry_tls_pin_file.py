"""Attack (issue 14 security review): the TLS token's PIN file made group- or
world-readable while a station process runs. python-pkcs11 checked its mode only when
the process first opened the token; libp11 reads the file again at every handshake. The
next connection must be refused, naming the file, before anything opens the token."""

from __future__ import annotations

from pathlib import Path

import pytest

from hsm.config import HsmConfigError, TokenConfig
from tools.registry import tls
from tools.registry.tls import ClientIdentity


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_readable_tls_pin_file_stops_the_next_connection(tmp_path: Path, mode: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pin = tmp_path / "registry-tls.pin"
    pin.write_text("0123456789ab")
    pin.chmod(0o600)
    opened: list[str] = []
    monkeypatch.setattr("hsm.token.open_token", lambda config: opened.append("token") or _Open())
    monkeypatch.setattr(tls, "load_engine_config", lambda path: opened.append("engine"))
    identity = ClientIdentity("juki_station_a", tmp_path / "station.pem", tmp_path / "openssl.cnf",
                              TokenConfig("/usr/lib/softhsm/libsofthsm2.so", "a-tls", pin), 1)
    identity.prepare()
    assert opened == ["token", "engine"]  # the private file: the connection goes ahead
    pin.chmod(mode)
    with pytest.raises(HsmConfigError, match=f"{pin} is readable by others"):
        identity.prepare()
    assert opened == ["token", "engine"]  # nothing more was opened


class _Open:
    def call(self, work):  # type: ignore[no-untyped-def]
        return work(None)
