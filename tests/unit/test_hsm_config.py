import os
from pathlib import Path

import pytest

from hsm.config import TokenConfig
from hsm.errors import HsmConfigError

SETTINGS = {"module": "/lib/a.so", "token_label": "station", "pin_file": "secrets/pin"}


def test_settings_resolve_relative_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PKCS11_MODULE", "PKCS11_TOKEN_LABEL", "PKCS11_PIN_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = TokenConfig.from_settings(SETTINGS, tmp_path)
    assert config.module == "/lib/a.so" and config.token_label == "station"
    assert config.pin_file == tmp_path / "secrets" / "pin"


def test_environment_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PKCS11_MODULE", "/lib/other.so")
    monkeypatch.setenv("PKCS11_TOKEN_LABEL", "prod")
    monkeypatch.setenv("PKCS11_PIN_FILE", "/run/pin")
    config = TokenConfig.from_settings(SETTINGS, tmp_path)
    assert (config.module, config.token_label, config.pin_file) == ("/lib/other.so", "prod", Path("/run/pin"))


def test_missing_settings_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PKCS11_MODULE", "PKCS11_TOKEN_LABEL", "PKCS11_PIN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(HsmConfigError, match="module, pin_file"):
        TokenConfig.from_settings({"token_label": "x"}, tmp_path)


def test_pin_file_must_be_private(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("s3cret\n")
    config = TokenConfig("/lib/a.so", "t", pin)
    os.chmod(pin, 0o640)
    with pytest.raises(HsmConfigError, match="chmod 600") as info:
        config.read_pin()
    assert "s3cret" not in str(info.value)
    os.chmod(pin, 0o600)
    assert config.read_pin() == "s3cret"
    assert "s3cret" not in repr(config)
