"""The MF-level GET DATA objects (RC §3), written at issuance with PUT DATA ``00 DA <tag>``
in the issuer security domain's SCP03 session:

| tag | ours |
|---|---|
| ``0042`` | the key ID of ``cv-root`` that starts the card's MF chain (``7000020/00N``) |
| ``0045`` | the card serial, 15 bare ASCII digits, as the blank card answers it (RC §3) |
| ``00F0`` | the municipality code, 5 ASCII digits (without its check digit) |
| ``00F2`` | the expiry date, YYYYMMDD |
| ``00F7`` | the key ID of ``cv-mf-intermediate`` (7000022), which signs ``7F21`` |
| ``00F8`` | the contents of the CV certificate 7000020 → 7000022 |
| ``7F21`` | the contents of the CV certificate 7000022 → the 共通AP key ``0019``, holder
  ``<last 7 serial digits>/000`` |

``5F51`` (the contact ATR without its ``3B``) is not written: the card answers it from
its own ATR.
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.issuer import IssuerSession
from cardlib.constants import MfDataObject
from cardlib.cv_certificate import CvCertificate, KeyId
from hsm.cv_hierarchy import CvHierarchy

CARD_KEY_GROUP = "000"  # the 7F21 holder: the card's own key, not a CA version


def card_key_id(serial: str) -> KeyId:
    """The 共通AP key's holder ID in ``7F21``: the serial's last 7 digits, group ``000``
    (the real test card's surface holder ``1322121/000`` has this shape)."""
    return KeyId.of(serial[-7:], CARD_KEY_GROUP)


def common_key_certificate(hierarchy: CvHierarchy, serial: str,
                           common_key: rsa.RSAPublicKey) -> CvCertificate:
    """``7F21``: ``cv-mf-intermediate`` certifies the 共通AP key ``0019`` (signed in the token)."""
    return hierarchy.mf_intermediate.certify(card_key_id(serial), common_key)


def mf_objects(hierarchy: CvHierarchy, serial: str, municipality_code: str, expiry: dt.date,
               common_key: rsa.RSAPublicKey) -> dict[int, bytes]:
    """Every MF data object of a card, by tag, as GET DATA will answer them."""
    return {
        MfDataObject.ISSUER_ID: hierarchy.root_id.raw,
        MfDataObject.CARD_ID: serial.encode("ascii"),
        MfDataObject.MUNICIPALITY: municipality_code[:5].encode("ascii"),
        MfDataObject.EXPIRY: expiry.strftime("%Y%m%d").encode("ascii"),
        MfDataObject.INTERMEDIATE_ISSUER: hierarchy.mf_intermediate.key_id.raw,
        MfDataObject.ROOT_CV_CERTIFICATE: hierarchy.mf_certificate.encode(template=False),
        MfDataObject.CV_CERTIFICATE: common_key_certificate(
            hierarchy, serial, common_key).encode(template=False),
    }


def personalise_mf(issuer: IssuerSession, objects: dict[int, bytes]) -> None:
    """PUT DATA of each object, the ISD selected (``issuer`` is its SCP03 session)."""
    issuer.select()
    for tag, value in objects.items():
        issuer.put_data(tag, value)
