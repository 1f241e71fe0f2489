"""Which PKCS#11 module and token to use, and where its user PIN comes from.

Read from the station home's ``config.toml`` section ``[hsm]``; overridable by the
environment (``PKCS11_MODULE``, ``PKCS11_TOKEN_LABEL``, ``PKCS11_PIN_FILE``). The PIN
itself is never a command-line argument: it is read from a file that only its owner
may read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import HsmConfigError

SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True)
class TokenConfig:
    module: str
    token_label: str
    pin_file: Path
    softhsm2_conf: Path | None = None

    def __repr__(self) -> str:  # no secrets here, but keep it short and explicit
        return f"TokenConfig(module={self.module!r}, token_label={self.token_label!r})"

    @classmethod
    def from_settings(cls, settings: dict[str, str], base: Path) -> TokenConfig:
        module = os.environ.get("PKCS11_MODULE") or settings.get("module")
        label = os.environ.get("PKCS11_TOKEN_LABEL") or settings.get("token_label")
        pin_file = os.environ.get("PKCS11_PIN_FILE") or settings.get("pin_file")
        missing = [n for n, v in (("module", module), ("token_label", label),
                                  ("pin_file", pin_file)) if not v]
        if missing:
            raise HsmConfigError(f"[hsm] settings missing: {', '.join(missing)}")
        assert module and label and pin_file
        conf = settings.get("softhsm2_conf")
        return cls(module, label, _resolve(base, pin_file), _resolve(base, conf) if conf else None)

    def read_pin(self) -> str:
        try:
            info = self.pin_file.stat()
        except FileNotFoundError as exc:
            raise HsmConfigError(f"token PIN file {self.pin_file} does not exist") from exc
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise HsmConfigError(
                f"token PIN file {self.pin_file} is readable by others; chmod 600 it"
            )
        pin = self.pin_file.read_text(encoding="utf-8").strip()
        if not pin:
            raise HsmConfigError(f"token PIN file {self.pin_file} is empty")
        return pin


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path
