"""The card surface (券面事項確認AP, RC §5) as the host sees it.

``read_face``: the face (or, with the birth-date key, the age record) released only
after the surface's own proof: EF 0004 chains to a trust anchor, every record verifies
under its holder key (DF28 over the three digests), and the card key those records
carry signs a fresh token challenge (``80 2A 00 00``).

``is_placeholder_photo``: whether a face photo is the plain placeholder an issuance
without a ``photo`` writes (`juki card check` flags such cards). The placeholder is
recognised by its JPEG 2000 codestream comment (COM marker, Latin text), which only
``tools.issuance.card_face_images.placeholder_photo`` writes: the photo is covered by
the face signature (DF28), so a signed card cannot have gained or lost the mark.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib import surface_records as sr
from cardlib.apps.surface import SurfaceApSession
from cardlib.constants import SurfaceFile
from cardlib.cv_certificate import decode_cv_certificate, verify_cv_chain
from cardlib.digestinfo import rsa_sha256_signature_verifies
from cardlib.errors import CardDataError

PLACEHOLDER_COMMENT = b"juki placeholder photo v1"  # = tools.issuance.card_face_images'
JP2_SIGNATURE_BOX = bytes.fromhex("0000000C6A5020200D0A870A")  # length 12, 'jP  ', 0D0A870A
MARKER_SOC, MARKER_SOT, MARKER_COM = 0xFF4F, 0xFF90, 0xFF64
COM_LATIN = 1
PRESENCE_CHALLENGE_BYTES = 16  # "what the 券面 protocol wants" (RC §4.6)
CREDENTIAL_KEYS = {"a": SurfaceFile.COLLATION_A, "b": SurfaceFile.COLLATION_B,
                   "dob": SurfaceFile.BIRTH_DATE_KEY}


class Challenges(Protocol):
    """Single-use challenges from the token (``hsm.verify.ChallengeBook``)."""

    def issue(self, size: int = ...) -> bytes: ...

    def redeem(self, challenge: bytes) -> bool: ...


def _codestream(jp2: bytes) -> bytes | None:
    """The contiguous codestream box ('jp2c') of a JP2 file, or None."""
    if not jp2.startswith(JP2_SIGNATURE_BOX):
        return None
    offset = 0
    while offset + 8 <= len(jp2):
        length, kind = struct.unpack_from(">I4s", jp2, offset)
        header = 8
        if length == 1:
            if offset + 16 > len(jp2):
                return None
            length, header = struct.unpack_from(">Q", jp2, offset + 8)[0], 16
        elif length == 0:
            length = len(jp2) - offset
        if length < header or offset + length > len(jp2):
            return None
        if kind == b"jp2c":
            return jp2[offset + header:offset + length]
        offset += length
    return None


def _main_header_comments(codestream: bytes) -> list[tuple[int, bytes]]:
    """(registration, text) of every COM marker before the first tile (SOT)."""
    if len(codestream) < 2 or struct.unpack_from(">H", codestream)[0] != MARKER_SOC:
        return []
    comments, offset = [], 2
    while offset + 4 <= len(codestream):
        marker, length = struct.unpack_from(">HH", codestream, offset)
        if marker == MARKER_SOT or marker >> 8 != 0xFF or length < 2:
            break
        segment = codestream[offset + 4:offset + 2 + length]
        if marker == MARKER_COM and len(segment) >= 2:
            comments.append((struct.unpack_from(">H", segment)[0], segment[2:]))
        offset += 2 + length
    return comments


def is_placeholder_photo(jp2: bytes) -> bool:
    """True when ``jp2`` is the issuance placeholder (see the module docstring)."""
    codestream = _codestream(jp2)
    return codestream is not None and (COM_LATIN, PLACEHOLDER_COMMENT) in _main_header_comments(codestream)


# ---- reading and verifying the face --------------------------------------------------


class FaceNotGenuineError(CardDataError):
    """The surface AP failed a check (named); nothing of it was released."""

    def __init__(self, failed: list[tuple[str, str]]) -> None:
        self.failed = failed
        super().__init__("card surface not genuine (" + "; ".join(
            f"{name}: {detail}" for name, detail in failed) + "); nothing was released")


@dataclass(frozen=True)
class FaceReading:
    """What `juki card face` releases, each part checked (see ``read_face``)."""

    credential: str  # "a", "b" or "dob"
    birth_date: dt.date
    anchor: str  # the key ID the surface EF 0004 chains to
    signer: str  # its holder: the key that signs the records
    checks: tuple[tuple[str, str], ...]  # (check, detail), every one passed
    sex: str | None = None
    expiry: dt.date | None = None  # DF29: NOT covered by DF28 (RC §5.2)
    name_png: bytes | None = field(default=None, repr=False)
    address_png: bytes | None = field(default=None, repr=False)
    photo_jp2: bytes | None = field(default=None, repr=False)
    code_png: bytes | None = field(default=None, repr=False)  # DF2A: not signed either
    number_png: bytes | None = field(default=None, repr=False)

    @property
    def fields(self) -> list[str]:
        """The provision's fields (what the output reveals)."""
        if self.credential == "dob":
            return ["birth_date"]
        found = ["birth_date", "sex", "expiry", "face_name_image", "face_address_image",
                 "face_photo", "security_code_image"]
        return found + (["individual_number_image"] if self.number_png is not None else [])

    def files(self) -> dict[str, bytes]:
        """The image files to write (name → bytes)."""
        named = {"name.png": self.name_png, "address.png": self.address_png,
                 "photo.jp2": self.photo_jp2, "code.png": self.code_png,
                 "number.png": self.number_png}
        return {name: data for name, data in named.items() if data is not None}

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"credential": self.credential,
                                  "birth_date": self.birth_date.isoformat()}
        if self.credential != "dob":
            out |= {"sex": self.sex, "expiry": self.expiry.isoformat() if self.expiry else None,
                    "expiry_signed": False, "security_code_signed": False,
                    "placeholder_photo": is_placeholder_photo(self.photo_jp2 or b"")}
        return out | {"anchor": self.anchor, "signer": self.signer,
                      "checks": [{"name": n, "ok": True, "detail": d} for n, d in self.checks]}


class _Checks:
    def __init__(self) -> None:
        self.passed: list[tuple[str, str]] = []

    def require(self, name: str, ok: bool, passed: str, failed: str) -> None:
        if not ok:
            raise FaceNotGenuineError([(name, failed)])
        self.passed.append((name, passed))


def read_face(session: SurfaceApSession, credential: str, secret: str,
              anchors: Mapping[bytes, rsa.RSAPublicKey],
              challenges: Challenges) -> FaceReading:
    """Select the surface AP, check its CV certificate (EF 0004, free) reaches an anchor
    before any secret is presented, present ``secret`` to the key of ``credential``
    (a, b or dob), read, and check: every record's signature under the EF 0004 holder
    key, one card key in every record, and the presence signature of ``001A`` over a
    fresh token challenge under that key. ``FaceNotGenuineError`` names a failure."""
    checks = _Checks()
    session.select()
    try:
        certificate = decode_cv_certificate(session.read_file(SurfaceFile.CV_CERTIFICATE))
        verify_cv_chain([certificate], anchors, role="surface")
    except CardDataError as exc:
        raise FaceNotGenuineError([("cv_chain", str(exc))]) from None
    checks.passed.append(("cv_chain", f"EF 0004 {certificate.holder} under anchor "
                                      f"{certificate.issuer}"))
    signer = certificate.public_key
    session.present(CREDENTIAL_KEYS[credential], secret)
    parts = (_read_age(session, signer, checks) if credential == "dob"
             else _read_face_records(session, signer, checks, credential == "a"))
    card_key = sr.decode_card_key(parts["card_key"])
    challenge = challenges.issue(PRESENCE_CHALLENGE_BYTES)
    signature = session.presence_signature(challenge)
    checks.require("presence", challenges.redeem(challenge) and
                   rsa_sha256_signature_verifies(card_key, signature, challenge),
                   "80 2A 00 00 over a fresh token challenge verifies under the card key",
                   "the presence signature does not verify under the records' card key")
    del parts["card_key"]
    return FaceReading(credential=credential, anchor=str(certificate.issuer),
                       signer=str(certificate.holder), checks=tuple(checks.passed), **parts)


def _read_age(session: SurfaceApSession, signer: rsa.RSAPublicKey,
              checks: _Checks) -> dict[str, Any]:
    age = sr.decode_age_record(session.read_file(SurfaceFile.AGE_RECORD))
    checks.require("age_record", age.verifies_under(signer),
                   "DF13 verifies under the EF 0004 key", "DF13 does not verify")
    return {"birth_date": age.birth_date, "card_key": age.card_key}


def _read_face_records(session: SurfaceApSession, signer: rsa.RSAPublicKey, checks: _Checks,
                       with_number: bool) -> dict[str, Any]:
    face = sr.decode_face(session.read_file(SurfaceFile.FACE))
    checks.require("face", sr.verify_face_signature(face, signer),
                   "DF28 verifies over H1‖H2‖H3 under the EF 0004 key",
                   "DF28 does not verify over the face (H1‖H2‖H3)")
    parts: dict[str, Any] = {
        "birth_date": face.birth_date, "sex": face.sex, "expiry": face.expiry,
        "name_png": face.name_png, "address_png": face.address_png,
        "photo_jp2": face.photo_jp2, "code_png": face.code_png, "card_key": face.card_key}
    if with_number:
        number = sr.decode_rendered_number(session.read_file(SurfaceFile.RENDERED_NUMBER))
        checks.require("rendered_number", number.verifies_under(signer),
                       "DF43 verifies under the EF 0004 key", "DF43 does not verify")
        checks.require("card_key", hmac.compare_digest(number.card_key, face.card_key),
                       "DF42 is DF24", "DF42 and DF24 name different card keys")
        parts["number_png"] = number.png
    return parts


def photo_png(jp2: bytes) -> bytes:
    """The JP2 photo as PNG, for viewing."""
    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(jp2)) as image:
        image.save(out, format="PNG")
    return out.getvalue()
