"""Persistent card state (the virtual card's EEPROM), written atomically.

PINs are stored as salted SHA-256 digests, never as the PIN itself; private keys as
PKCS#8 PEM (this is a test card, not a secure element).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic_file import write_atomically
from ..constants import LifeCycle

STATE_VERSION = 1
FREE = "free"


@dataclass
class PinState:
    max_tries: int
    tries_left: int
    min_length: int
    max_length: int
    charset: str
    salt: str = ""
    digest: str | None = None  # None until personalisation sets the PIN

    def is_set(self) -> bool:
        return self.digest is not None

    def hash(self, pin: bytes) -> str:
        return hashlib.sha256(bytes.fromhex(self.salt) + pin).hexdigest()

    def accepts_format(self, pin: bytes) -> bool:
        try:
            text = pin.decode("ascii")
        except UnicodeDecodeError:
            return False
        return self.min_length <= len(text) <= self.max_length and all(
            c in self.charset for c in text
        )

    def set(self, pin: bytes) -> None:
        self.salt = secrets.token_hex(16)
        self.digest = self.hash(pin)
        self.tries_left = self.max_tries


@dataclass
class FileState:
    read: str = FREE  # "free" or "pin:XXXX" (FID of the PIN in the same application)
    data: str = ""  # hex

    @property
    def content(self) -> bytes:
        return bytes.fromhex(self.data)


@dataclass
class ScpKeys:
    """The application's SCP03 static keys (hex), as the card holds them."""

    kvn: int
    enc: str
    mac: str
    dek: str

    def __repr__(self) -> str:
        return f"ScpKeys(kvn={self.kvn:02X}, <redacted>)"


@dataclass
class AppState:
    files: dict[str, FileState] = field(default_factory=dict)
    pins: dict[str, PinState] = field(default_factory=dict)
    keys: dict[str, str | None] = field(default_factory=dict)  # FID -> private key PEM
    key_pins: dict[str, str] = field(default_factory=dict)  # key FID -> PIN FID it needs
    scp: ScpKeys | None = None  # SCP03 keys, if the application has a secure channel
    sm_level: int = 0  # security level every command but SELECT/IU/EA must arrive under
    admin_key: str | None = None  # PIV management key (AES-128, hex)

    def __repr__(self) -> str:
        return f"AppState(files={sorted(self.files)}, pins={sorted(self.pins)}, <keys redacted>)"


@dataclass
class CardState:
    serial: str
    atr: str
    life_cycle: int = LifeCycle.OP_READY
    profile: str = "resident"
    apps: dict[str, AppState] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "serial": self.serial,
                "atr": self.atr,
                "life_cycle": self.life_cycle,
                "profile": self.profile,
                "apps": {
                    aid: {
                        "files": {fid: vars(f) for fid, f in app.files.items()},
                        "pins": {fid: vars(p) for fid, p in app.pins.items()},
                        "keys": app.keys,
                        "key_pins": app.key_pins,
                        "scp": vars(app.scp) if app.scp else None,
                        "sm_level": app.sm_level,
                        "admin_key": app.admin_key,
                    }
                    for aid, app in self.apps.items()
                },
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CardState:
        raw = json.loads(text)
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"card state version {raw.get('version')!r} is not {STATE_VERSION}")
        apps = {
            aid: AppState(
                files={fid: FileState(**f) for fid, f in app["files"].items()},
                pins={fid: PinState(**p) for fid, p in app["pins"].items()},
                keys=dict(app["keys"]),
                key_pins=dict(app.get("key_pins", {})),
                scp=ScpKeys(**app["scp"]) if app.get("scp") else None,
                sm_level=app.get("sm_level", 0),
                admin_key=app.get("admin_key"),
            )
            for aid, app in raw["apps"].items()
        }
        return cls(raw["serial"], raw["atr"], raw["life_cycle"], raw["profile"], apps)


class StateFile:
    """Where a virtual card keeps its state between emulator runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> CardState:
        return CardState.from_json(self.path.read_text(encoding="utf-8"))

    def save(self, state: CardState) -> None:
        write_atomically(self.path, state.to_json())
