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

STATE_VERSION = 2  # 2: allocated EF sizes, record EFs, access alternatives, MF data objects
FREE = "free"
NEVER = "never"  # an internal EF: READ BINARY / READ RECORD answer 6981
FILLER = 0xFF  # the erased value of a transparent EF (JICSAP; real-card.md §2.2)


def pin_rule(*fids: int) -> str:
    """The read rule opened by any one of the key references ``fids``: "pin:0011|pin:0014"."""
    return "|".join(f"pin:{fid:04X}" for fid in fids)


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
    """An EF. ``read``: "free", "never" (internal EF) or alternatives "pin:0011|pin:0014"
    (any one verified key reference of the same application opens it). A transparent EF
    with an allocated ``size`` holds exactly ``size`` bytes (``FF`` where nothing was
    written); ``records`` (hex, record 1 first) makes it a record EF."""

    read: str = FREE
    data: str = ""  # hex: the whole physical content
    size: int | None = None  # allocated size; None: grows with what is written (PIV objects)
    records: list[str] | None = None

    @classmethod
    def allocated(cls, size: int, read: str = FREE) -> FileState:
        return cls(read=read, data=(bytes((FILLER,)) * size).hex(), size=size)

    @classmethod
    def record_ef(cls, read: str = FREE) -> FileState:
        return cls(read=read, records=[])

    @property
    def content(self) -> bytes:
        return bytes.fromhex(self.data)

    @property
    def is_record_ef(self) -> bool:
        return self.records is not None

    def opened_by(self, verified: set[str]) -> bool:
        """Whether the security status ``verified`` (key FIDs) satisfies the read rule."""
        if self.read == FREE:
            return True
        return any(alternative.removeprefix("pin:") in verified
                   for alternative in self.read.split("|") if alternative.startswith("pin:"))


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
    data_objects: dict[str, str] = field(default_factory=dict)  # MF GET DATA: "00F8" -> hex

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
                "data_objects": self.data_objects,
            },
            indent=1,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> CardState:
        raw = json.loads(text)
        if raw.get("version") != STATE_VERSION:
            raise ValueError(
                f"card state version {raw.get('version')!r} is not {STATE_VERSION}: this card was "
                "made by an older emulator (before allocated EF sizes and record EFs); make the "
                "card again (`juki rig insert`)")
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
        return cls(raw["serial"], raw["atr"], raw["life_cycle"], raw["profile"], apps,
                   dict(raw.get("data_objects", {})))


class StateFile:
    """Where a virtual card keeps its state between emulator runs."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> CardState:
        return CardState.from_json(self.path.read_text(encoding="utf-8"))

    def save(self, state: CardState) -> None:
        write_atomically(self.path, state.to_json())
