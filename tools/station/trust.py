"""The trust store: the CV-certificate keys a card's chain may end at (issue 12 §3).

Three sets, each switched on by name in ``[trust] anchors`` of the station config:

- ``jlis-production``: the J-LIS production CA keys 5000020/5000023/5000033 (RC §6.1);
- ``jpki-test``: the JPKI test-hierarchy keys 6000020/6000023/6000033 (off by default: a
  station that accepts test cards as genuine must say so);
- ``station``: our own CV hierarchy's CA keys in the station's token (every version), for
  the cards this station issues;

and ``[trust] extra = "<path>"``: a TOML file of further anchors (``[[anchor]]`` tables
with ``key_id`` as ``NNNNNNN/GGG`` or 32 hex digits, ``modulus`` in hex, optional
``exponent`` (65537 only, as the card's key form) and ``name``). Keys are looked up by
all 16 bytes of their key ID; two anchors with one key ID and different keys are refused.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.cv_certificate import KeyId
from cardlib.errors import CardDataError
from cardlib.trust_anchors import JPKI_TEST, PRODUCTION, PUBLISHED_ANCHORS

from ..errors import StationConfigError

SETS = ("jlis-production", "jpki-test", "station")
DEFAULT_SETS = ("jlis-production", "station")
PUBLISHED_SETS = {"jlis-production": PRODUCTION, "jpki-test": JPKI_TEST}
STATION_HIERARCHY = "station (token)"
EXTRA_HIERARCHY = "extra"


@dataclass(frozen=True)
class AnchorInfo:
    """One anchor as `juki trust list` shows it."""

    key_id: str
    hierarchy: str  # "J-LIS production", "JPKI test", "station (token)", "extra"
    source: str  # the set that put it there, or the extra file's path
    modulus_sha256: str
    role: str = ""

    def as_json(self) -> dict[str, str]:
        return dict(vars(self))


@dataclass(frozen=True)
class Anchor:
    key_id: KeyId
    key: rsa.RSAPublicKey
    info: AnchorInfo


def _modulus_digest(key: rsa.RSAPublicKey) -> str:
    n = key.public_numbers().n
    return hashlib.sha256(n.to_bytes((n.bit_length() + 7) // 8, "big")).hexdigest()


def _anchor(key_id: KeyId, key: rsa.RSAPublicKey, hierarchy: str, source: str,
            role: str = "") -> Anchor:
    return Anchor(key_id, key, AnchorInfo(key_id.text, hierarchy, source,
                                          _modulus_digest(key), role))


def _station_anchors(hsm: Any) -> list[Anchor]:
    from hsm.cv_hierarchy import station_anchors

    found = station_anchors(hsm)
    return [_anchor(KeyId(raw if isinstance(raw, bytes) else raw.raw), key, STATION_HIERARCHY,
                    "station") for raw, key in found.items()]


def _extra_key_id(text: str, where: str) -> KeyId:
    try:
        if len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text):
            return KeyId(bytes.fromhex(text))
        return KeyId.parse(text)
    except (ValueError, CardDataError) as exc:
        raise StationConfigError(f"{where}: key_id: {exc}") from None


def load_extra(path: Path, read: Callable[[Path], bytes] = Path.read_bytes) -> list[Anchor]:
    """The anchors of an extra-anchors file; any error names the file and the anchor."""
    try:
        document = tomllib.loads(read(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StationConfigError(f"trust anchors file {path}: {exc}") from None
    except RecursionError:  # found by tests/fuzz (trust_anchors_file): a = [[[[…
        raise StationConfigError(f"trust anchors file {path}: nested too deeply") from None
    entries = document.get("anchor", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StationConfigError(f"trust anchors file {path}: expected [[anchor]] tables")
    anchors = []
    for number, entry in enumerate(entries, start=1):
        where = f"trust anchors file {path}, anchor {number}"
        key_id = _extra_key_id(str(entry.get("key_id", "")), where)
        try:
            modulus = int(str(entry["modulus"]), 16)
        except (KeyError, ValueError):
            raise StationConfigError(f"{where}: modulus must be hex digits") from None
        if entry.get("exponent", 65537) != 65537:
            raise StationConfigError(f"{where}: exponent must be 65537 (the card's key form)")
        if modulus <= 0 or modulus.bit_length() != 2048 or modulus % 2 == 0:  # "-FF…" parses
            raise StationConfigError(f"{where}: modulus must be an odd 2048-bit number")
        key = rsa.RSAPublicNumbers(65537, modulus).public_key()
        anchors.append(_anchor(key_id, key, EXTRA_HIERARCHY, str(path), str(entry.get("name", ""))))
    return anchors


class TrustStore:
    """The anchors in force: the configured sets plus the extra file."""

    def __init__(self, anchors: list[Anchor], sets: tuple[str, ...],
                 extra: Path | None = None) -> None:
        self.sets = sets
        self.extra = extra
        self._anchors: dict[bytes, Anchor] = {}
        for anchor in anchors:
            known = self._anchors.get(anchor.key_id.raw)
            if known is not None and known.key.public_numbers() != anchor.key.public_numbers():
                raise StationConfigError(f"trust anchor {anchor.key_id} is given twice with "
                                         f"different keys ({known.info.source}, "
                                         f"{anchor.info.source})")
            self._anchors.setdefault(anchor.key_id.raw, anchor)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], hsm: Any | None,
                      read: Callable[[Path], bytes] = Path.read_bytes) -> TrustStore:
        """``settings`` is the station config; ``hsm`` gives the station set (None: the
        station set is left out, e.g. where no token is open)."""
        trust = settings.get("trust", {})
        sets = tuple(trust.get("anchors", DEFAULT_SETS))
        unknown = [s for s in sets if s not in SETS]
        if unknown:
            raise StationConfigError(f"[trust] anchors: unknown set(s) {', '.join(unknown)}; "
                                     f"known: {', '.join(SETS)}")
        anchors = [_anchor(a.key_id, a.public_key(), a.hierarchy, name, a.signs)
                   for name, hierarchy in PUBLISHED_SETS.items() if name in sets
                   for a in PUBLISHED_ANCHORS if a.hierarchy == hierarchy]
        if "station" in sets and hsm is not None:
            anchors += _station_anchors(hsm)
        extra = Path(trust["extra"]) if trust.get("extra") else None
        if extra is not None:
            anchors += load_extra(extra, read)
        return cls(anchors, sets, extra)

    def anchors(self) -> Mapping[bytes, rsa.RSAPublicKey]:
        """16-byte key ID → key, as ``cardlib.cv_certificate.verify_cv_chain`` takes them."""
        return {raw: anchor.key for raw, anchor in self._anchors.items()}

    def info(self, key_id: bytes) -> AnchorInfo | None:
        anchor = self._anchors.get(key_id)
        return anchor.info if anchor is not None else None

    def describe(self) -> list[AnchorInfo]:
        return [a.info for a in sorted(self._anchors.values(), key=lambda a: a.key_id.raw)]
