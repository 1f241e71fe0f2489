"""`juki card dump`: every file of a resident card that is readable now, with its physical
bytes (filler included), per application; MF GET DATA objects; an index naming how each
was read. What needs a credential is read only after ``--with`` presents it.

The dump is a provision of whatever identity data it holds: ``identity_fields`` names
it, and the CLI records it before a byte is written.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apdu import CommandApdu
from cardlib.apps.base import ApplicationSession
from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
from cardlib.apps.issuer import IssuerSession
from cardlib.channel import ApduChannel
from cardlib.constants import (
    Aid,
    CardInfoFile,
    CommonFile,
    Ins,
    JpkiFile,
    JukiFile,
    MfDataObject,
    SurfaceFile,
)
from cardlib.cv_certificate import decode_cv_certificate, verify_cv_chain
from cardlib.errors import ApduError, CardDataError
from cardlib.status import SW

from .card_info import Credential

Anchors = Mapping[bytes, rsa.RSAPublicKey]

DUMP_ID = re.compile(r"[0-9A-F]{4}(\.[0-9]{1,2})?")
MAX_RECORDS = 16  # record EFs of these APs hold one or two records


@dataclass(frozen=True)
class ApSpec:
    """One application: its name in the dump, AID, transparent EFs, record EFs, keys."""

    name: str
    aid: bytes
    files: tuple[int, ...] = ()
    records: tuple[int, ...] = ()
    keys: tuple[int, ...] = ()


APPLICATIONS = (
    ApSpec("card_info", Aid.CARD_INFO, files=tuple(int(f) for f in (
        CardInfoFile.INDIVIDUAL_NUMBER, CardInfoFile.ATTRIBUTES, CardInfoFile.INTEGRITY,
        CardInfoFile.CV_CERTIFICATE, CardInfoFile.BASIC_INFO, CardInfoFile.SESSION_KEY,
        CardInfoFile.SIGNED_KEY, CardInfoFile.UNKNOWN_0008)),
        keys=(CardInfoFile.PIN, CardInfoFile.BLOCKED_KEY, CardInfoFile.COLLATION_A,
              CardInfoFile.COLLATION_B)),
    ApSpec("surface", Aid.CARD_SURFACE, files=tuple(int(f) for f in (
        SurfaceFile.AGE_RECORD, SurfaceFile.FACE, SurfaceFile.BASIC_INFO,
        SurfaceFile.CV_CERTIFICATE, SurfaceFile.RENDERED_NUMBER, SurfaceFile.UNKNOWN_0006)),
        keys=(SurfaceFile.BIRTH_DATE_KEY, SurfaceFile.COLLATION_B, SurfaceFile.COLLATION_A)),
    ApSpec("jpki", Aid.JPKI, files=tuple(int(f) for f in (
        JpkiFile.SIGN_CERT, JpkiFile.SIGN_CA_CERT, JpkiFile.TOKEN_INFO,
        JpkiFile.CERT_AVAILABILITY, JpkiFile.AUTH_CERT, JpkiFile.AUTH_CA_CERT)),
        keys=(JpkiFile.AUTH_PIN, JpkiFile.SIGN_PIN)),
    ApSpec("common", Aid.COMMON, records=(CommonFile.CARD_INFO_RECORD,
                                          CommonFile.KEY_REFERENCE),
           keys=(CommonFile.PIN,)),
    ApSpec("juki", Aid.RESIDENT_REGISTRY, records=(JukiFile.KEY_REFERENCE,),
           keys=(JukiFile.PIN,)),
)
AP_BY_NAME = {spec.name: spec for spec in APPLICATIONS}
DUMP_APS = frozenset({"mf", *AP_BY_NAME})
# The surface AP's key for each card-info credential (照合番号A/B are the same values).
SURFACE_KEY = {CardInfoKey.COLLATION_A: SurfaceFile.COLLATION_A,
               CardInfoKey.COLLATION_B: SurfaceFile.COLLATION_B}
# Identity data a file holds, as provision fields.
IDENTITY_FIELDS: dict[tuple[str, int], list[str]] = {
    ("card_info", CardInfoFile.INDIVIDUAL_NUMBER): ["individual_number"],
    ("card_info", CardInfoFile.ATTRIBUTES): ["name", "birth_date", "sex", "address"],
    ("surface", SurfaceFile.AGE_RECORD): ["birth_date"],
    ("surface", SurfaceFile.FACE): ["name", "birth_date", "sex", "address", "photo"],
    ("surface", SurfaceFile.RENDERED_NUMBER): ["individual_number"],
    ("jpki", JpkiFile.SIGN_CERT): ["signature_certificate"],
}


@dataclass(frozen=True)
class DumpedFile:
    ap: str  # "mf" for GET DATA objects
    name: str  # 4 hex digits (FID or tag), records "<fid>.<record>"
    data: bytes
    how: str

    @property
    def path(self) -> str:
        return f"{self.ap}/{self.name}.bin"

    def as_json(self) -> dict[str, Any]:
        return {"ap": self.ap, "id": self.name, "path": self.path, "size": len(self.data),
                "sha256": hashlib.sha256(self.data).hexdigest(), "read": self.how}

    def __repr__(self) -> str:  # the bytes may be identity data
        return f"DumpedFile({self.path}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class CardDump:
    files: tuple[DumpedFile, ...]
    refused: tuple[dict[str, str], ...]
    credential: str | None
    applications: tuple[str, ...] = field(default=())

    def file(self, ap: str, name: str) -> DumpedFile | None:
        return next((f for f in self.files if f.ap == ap and f.name == name), None)

    def identity_fields(self) -> list[str]:
        found: list[str] = []
        for dumped in self.files:
            fid = int(dumped.name.split(".")[0], 16) if dumped.ap != "mf" else -1
            for name in IDENTITY_FIELDS.get((dumped.ap, fid), []):
                if name not in found:
                    found.append(name)
        return found

    def index(self) -> dict[str, Any]:
        return {"format": "juki card dump v1", "credential": self.credential,
                "applications": list(self.applications),
                "files": [f.as_json() for f in self.files], "refused": list(self.refused)}


def get_data(channel: ApduChannel, tag: int) -> tuple[bytes, int]:
    """MF GET DATA ``00 CA`` with short Le, then extended Le on 6700 (RC §2.1)."""
    data, sw = channel.transceive(CommandApdu(0x00, Ins.GET_DATA, tag >> 8, tag & 0xFF, ne=256))
    if sw == SW.WRONG_LENGTH:
        data, sw = channel.transceive(CommandApdu(0x00, Ins.GET_DATA, tag >> 8, tag & 0xFF,
                                                  ne=65536))
    return data, sw


def _sw(exc: ApduError) -> str:
    return f"{exc.sw:04X}"


def _mf_objects(channel: ApduChannel, refused: list[dict[str, str]]) -> Iterator[DumpedFile]:
    IssuerSession(channel).select()  # the power-on state: no AP selected
    for tag in MfDataObject:
        data, sw = get_data(channel, tag)
        if sw == SW.OK:
            yield DumpedFile("mf", f"{int(tag):04X}", data, "GET DATA")
        else:
            refused.append({"ap": "mf", "id": f"{int(tag):04X}", "sw": f"{sw:04X}"})


def _records(session: ApplicationSession, spec: ApSpec,
             refused: list[dict[str, str]]) -> Iterator[DumpedFile]:
    for fid in spec.records:
        try:
            session.select_ef(fid)
        except ApduError as exc:
            refused.append({"ap": spec.name, "id": f"{fid:04X}", "sw": _sw(exc)})
            continue
        for number in range(1, MAX_RECORDS + 1):
            data, sw = session.channel.transceive(
                CommandApdu(0x00, Ins.READ_RECORD, number, 0x04, ne=256))
            if sw == SW.OK:
                yield DumpedFile(spec.name, f"{fid:04X}.{number}", data, f"READ RECORD {number}")
                continue
            if sw != SW.RECORD_NOT_FOUND or number == 1:
                refused.append({"ap": spec.name, "id": f"{fid:04X}.{number}", "sw": f"{sw:04X}"})
            break


def _anchored(session: ApplicationSession, role: str, anchors: Anchors | None) -> bool:
    """Whether the AP's EF 0004 chains to an anchor of ``role`` (no anchors: not asked)."""
    if anchors is None:
        return True
    try:
        verify_cv_chain([decode_cv_certificate(session.read_physical(0x0004))], anchors, role)
    except (ApduError, CardDataError):
        return False
    return True


def _present(session: ApplicationSession, spec: ApSpec, credential: Credential | None,
             anchors: Anchors | None = None) -> str:
    """Present ``credential`` where it applies, and only to an AP whose EF 0004 chains to
    an anchor of its role (as `juki verify` and `card face` do); what opened its files."""
    if credential is None:
        return "free"
    role = {"card_info": "card-info", "surface": "surface"}.get(spec.name)
    if role is not None and not _anchored(session, role, anchors):
        return "free: EF 0004 not anchored, credential withheld"
    if spec.name == "card_info":
        assert isinstance(session, CardInfoApSession)
        session.present(credential.key, credential.secret.reveal())
        return credential.key.name.lower()
    surface_key = SURFACE_KEY.get(credential.key)
    if spec.name == "surface" and surface_key is not None:
        session.verify_pin(credential.secret.reveal(), int(surface_key))
        return credential.key.name.lower()
    return "free"


def _application(channel: ApduChannel, spec: ApSpec, credential: Credential | None,
                 refused: list[dict[str, str]], anchors: Anchors | None) -> Iterator[DumpedFile]:
    session_class = CardInfoApSession if spec.name == "card_info" else ApplicationSession
    session = session_class(channel, spec.aid)
    session.select()
    opened = _present(session, spec, credential, anchors)
    for fid in spec.files:
        try:
            data = session.read_physical(fid)
        except ApduError as exc:
            refused.append({"ap": spec.name, "id": f"{fid:04X}", "sw": _sw(exc)})
            continue
        yield DumpedFile(spec.name, f"{fid:04X}", data, f"READ BINARY to the end ({opened})")
    yield from _records(session, spec, refused)


def dump_card(channel: ApduChannel, credential: Credential | None,
              anchors: Anchors | None = None) -> CardDump:
    """Read what is readable now. The credential is presented to the card-info AP (and,
    for 照合番号A/B, to the surface AP's key of the same value); a wrong one raises. With
    ``anchors``, only to an AP whose EF 0004 chains to an anchor of its role."""
    refused: list[dict[str, str]] = []
    files = list(_mf_objects(channel, refused))
    present: list[str] = []
    for spec in APPLICATIONS:
        try:
            ApplicationSession(channel, spec.aid).select()
        except ApduError as exc:
            refused.append({"ap": spec.name, "id": "SELECT", "sw": _sw(exc)})
            continue
        present.append(spec.name)
        files += _application(channel, spec, credential, refused, anchors)
    return CardDump(tuple(files), tuple(refused),
                    credential.key.name.lower() if credential else None, tuple(present))


def write_dump(dump: CardDump, write: Callable[[str, bytes], None]) -> None:
    """Every file as ``<ap>/<id>.bin`` and ``index.json``, through ``write(relative, data)``."""
    import json

    for dumped in dump.files:
        write(dumped.path, dumped.data)
    write("index.json", json.dumps(dump.index(), indent=2, ensure_ascii=False).encode())


def _entry(entry: Any) -> tuple[str, str, str, str]:
    """(ap, id, how, sha256) of one index entry; only names a dump can hold (no path of
    the index's own choosing is ever opened)."""
    try:
        ap, name, how, digest = (str(entry["ap"]), str(entry["id"]), str(entry["read"]),
                                 str(entry["sha256"]))
    except (KeyError, TypeError) as exc:
        raise CardDataError(f"dump index.json: malformed entry ({exc})") from None
    if ap not in DUMP_APS or not DUMP_ID.fullmatch(name):
        raise CardDataError(f"dump index.json: no such file in a dump: {ap}/{name}")
    return ap, name, how, digest


def load_dump(read: Callable[[str], bytes]) -> tuple[CardDump, dict[str, str]]:
    """A dump back from its directory (``read(relative) -> bytes``), and the SHA-256 the
    index gives each path; a malformed index raises ``CardDataError`` naming it."""
    import json

    try:
        index = json.loads(read("index.json"))
        entries = list(index["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CardDataError(f"dump index.json: not a card dump index ({exc})") from None
    files, digests = [], {}
    for entry in entries:
        ap, name, how, digest = _entry(entry)
        dumped = DumpedFile(ap, name, read(f"{ap}/{name}.bin"), how)
        files.append(dumped)
        digests[dumped.path] = digest
    credential = index.get("credential")
    return CardDump(tuple(files), tuple(index.get("refused", [])),
                    str(credential) if credential else None,
                    tuple(str(a) for a in index.get("applications", []))), digests
