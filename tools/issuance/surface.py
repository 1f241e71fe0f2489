"""Personalising the card surface AP (券面事項確認AP, RC §5) at issuance.

In the issuer's SCP03 session: GENERATE KEY PAIR on ``001A`` (the card key that DF12,
DF24 and DF42 carry and that answers ``80 2A 00 00``), then the records, each signed in
the token by ``cv-surface-signer`` (the key the AP's EF ``0004`` certifies):

- ``0001`` age record: DF11 birth date, DF12 card key, DF13 over DF11 ‖ DF12;
- ``0002`` card face: nine offsets from byte 0 of the file, birth date, sex, card key,
  name and address PNGs, the JP2 photo, DF28 = PKCS#1 v1.5 over the three-digest payload
  (signed raw in the token, CKM_RSA_PKCS), expiry and the security-code PNG (not signed);
- ``0003`` basic data (ours, docs/resident-card.md); ``0004`` the surface CV
  certificate; ``0005`` the rendered individual number (only with one); ``0006`` 16 FF;

and the three keys: ``0011`` 和暦 YYMMDD of birth, ``0012`` 照合番号B, ``0013``
照合番号A (the individual number; without one the key stays unset and nothing opens
``0005``).
"""

from __future__ import annotations

import datetime as dt

from cardlib import surface_records as sr
from cardlib.apps.base import WritableApSession
from cardlib.channel import ApduChannel
from cardlib.collation import collation_b, wareki_yymmdd
from cardlib.constants import Aid, SurfaceFile
from cardlib.cv_certificate import KeyId
from hsm.cv_hierarchy import CvSigner

from . import card_face_images as images
from .request import IdentityRequest

# EF 0003 (RC §5.3), ours: DF31 like the real 06 03 0E 01 (spec version 06, extended
# Lc/Le 03) with vendor 00 (no registered vendor) and option 01; DF32 a key ID of the
# real shape that names no key of ours (the real x000024 is unexplained, RC §12); DF33
# version 00; DF35 a key ID of the same kind and 256 zero bytes (the real content is
# opaque, RC §12: we put nothing in it).
BASIC_INFO_SPEC = bytes.fromhex("06030001")
BASIC_INFO_KEY_ID = KeyId.of("7000024", "001")
BASIC_INFO_VERSION = b"\x00"
BASIC_INFO_OPAQUE_KEY_ID = KeyId.of("7900025", "001")
BASIC_INFO_OPAQUE = bytes(256)
UNKNOWN_0006 = b"\xff" * 16
MUNICIPALITY_DIGITS = 5  # DF34: the 全国地方公共団体コード without its check digit


def surface_face(signer: CvSigner, request: IdentityRequest, card_key_raw: bytes,
                 expiry: dt.date, security_code: str) -> bytes:
    """EF 0002: the face, DF28 signed raw in the token over the three-digest payload."""
    photo = images.photo_jp2(request.photo) if request.photo else images.placeholder_photo()
    unsigned = sr.CardFace(
        birth_date=request.birth_date, sex=request.sex, card_key=card_key_raw,
        name_png=images.name_image(request.name),
        address_png=images.address_image(request.address), photo_jp2=photo,
        signature=b"", expiry=expiry, code_png=images.security_code_image(security_code))
    return sr.encode_face(sr.sign_face(unsigned, signer.sign_padded))


def personalise_surface_ap(secure: ApduChannel, signer: CvSigner, cv_certificate: bytes,
                           request: IdentityRequest, expiry: dt.date, security_code: str,
                           individual_number: str | None) -> None:
    """Everything the surface AP holds (see the module docstring); ``secure`` is the
    issuer's SCP03 channel, ``signer`` the token key that ``cv_certificate`` certifies."""
    ap = WritableApSession(secure, Aid.CARD_SURFACE)
    ap.select()
    card_key = sr.encode_card_key(ap.generate_rsa_key(SurfaceFile.PRESENCE_KEY))
    ap.write_file(SurfaceFile.AGE_RECORD, sr.encode_age_record(
        request.birth_date, card_key, signer.sign))
    ap.write_file(SurfaceFile.FACE, surface_face(signer, request, card_key, expiry,
                                                 security_code))
    ap.write_file(SurfaceFile.BASIC_INFO, sr.encode_basic_info(sr.SurfaceBasicInfo(
        spec=BASIC_INFO_SPEC, key_id=BASIC_INFO_KEY_ID.raw, version=BASIC_INFO_VERSION,
        municipality=request.municipality_code[:MUNICIPALITY_DIGITS],
        opaque=BASIC_INFO_OPAQUE_KEY_ID.raw + BASIC_INFO_OPAQUE)))
    ap.write_file(SurfaceFile.CV_CERTIFICATE, cv_certificate)
    if individual_number is not None:
        ap.write_file(SurfaceFile.RENDERED_NUMBER, sr.encode_rendered_number(
            images.number_image(individual_number), card_key, signer.sign))
    ap.write_file(SurfaceFile.UNKNOWN_0006, UNKNOWN_0006)
    ap.set_pin(SurfaceFile.BIRTH_DATE_KEY, wareki_yymmdd(request.birth_date))
    ap.set_pin(SurfaceFile.COLLATION_B, collation_b(request.birth_date, expiry, security_code))
    if individual_number is not None:
        ap.set_pin(SurfaceFile.COLLATION_A, individual_number)
