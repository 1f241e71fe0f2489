"""The surface AP's part of `juki card check`: its records' signatures under the key of
its EF 0004, and whether the face photo is the placeholder issuance puts in when a
request has no photo (flagged as a failure: a card with no face is not fit to show)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cardlib import surface_records as sr
from cardlib.cv_certificate import CvCertificate
from cardlib.errors import CardDataError

from .face import is_placeholder_photo


@dataclass(frozen=True)
class Finding:
    """One check: ``ok`` True/False, or None when it could not be made (file not read)."""

    check: str
    ok: bool | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


def _record(check: str, raw: bytes | None, signer: CvCertificate | None,
            verify: Callable[[bytes, CvCertificate], bool]) -> Finding:
    if raw is None:
        return Finding(check, None, "not read (needs a credential of the surface AP)")
    if signer is None:
        return Finding(check, False, "no verified surface EF 0004 key to check it under")
    try:
        ok = verify(raw, signer)
    except CardDataError as exc:
        return Finding(check, False, str(exc))
    return Finding(check, ok, f"{'verifies' if ok else 'does not verify'} under {signer.holder}")


def _photo(raw: bytes | None) -> Finding:
    check = "surface face photo (EF 0002 DF27)"
    if raw is None:
        return Finding(check, None, "not read (needs 照合番号A or B)")
    try:
        face = sr.decode_face(raw)
    except CardDataError as exc:
        return Finding(check, False, str(exc))
    if is_placeholder_photo(face.photo_jp2):
        return Finding(check, False, "the placeholder image: the card was issued without a photo")
    return Finding(check, True, f"a photo ({len(face.photo_jp2)} bytes JPEG 2000)")


def surface_checks(dump: Any, signer: CvCertificate | None) -> list[Finding]:
    """Age record DF13, face DF28 (three digests), rendered number DF43, the photo."""
    def data(fid: str) -> bytes | None:
        found = dump.file("surface", fid)
        return found.data if found is not None else None

    return [
        _record("surface age record DF13 (EF 0001)", data("0001"), signer,
                lambda raw, cert: sr.decode_age_record(raw).verifies_under(cert.public_key)),
        _record("surface card face DF28 (EF 0002)", data("0002"), signer,
                lambda raw, cert: sr.verify_face_signature(sr.decode_face(raw), cert.public_key)),
        _record("surface rendered number DF43 (EF 0005)", data("0005"), signer,
                lambda raw, cert: sr.decode_rendered_number(raw).verifies_under(cert.public_key)),
        _photo(data("0002")),
    ]
