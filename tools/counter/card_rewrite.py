"""The card writes of a change to the 4 information, in the issuer domain's counter
session (``card_session.CounterSession``: SCP03 level 33 with the card's transport keys,
derived in the token):

- ``rewrite_identity``: card-info EF ``0002`` (the 4 information, erased to its ``FF``
  filler first), EF ``0003`` (the integrity record: DF31 the digest of the card's own EF
  ``0001``, DF32 over the new EF ``0002``, DF33 signed in the token by
  ``cv-card-info-signer``), and 共通AP EF ``0001`` record 1 (serial, municipality,
  expiry);
- ``reissue_signature_certificate``: a new JPKI signature key generated on the card
  (``001A``), its certificate from ``resident-sign-ca`` in the token with the 4
  information, JPKI EF ``0001`` rewritten.

Both are idempotent: run again to the same target they leave the same card (a second
signature key supersedes the first; the caller revokes the certificate it replaced).
The card-surface AP is never rewritten: it is the face as printed at issuance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cardlib.constants import Aid, CardInfoFile, CommonFile, JpkiFile
from cardlib.integrity import attributes_digest, encode_integrity_record, signed_part
from cardlib.records import CardInfoRecord, FourInfo, encode_card_info_record, encode_four_info
from hsm.cv_hierarchy import CvHierarchy
from hsm.token import Hsm

from ..pki.issued import DEFAULT_CRL_BASE_URL

if TYPE_CHECKING:
    from .card_session import CounterSession


def rewrite_identity(session: CounterSession, hsm: Hsm, signers: Any, identity: FourInfo,
                     municipality_code: str, card_serial: str, expiry: dt.date, *,
                     number_digest: bytes) -> None:
    """The card's 4 information and municipality, to ``identity`` and
    ``municipality_code``. ``signers``: has ``cv`` (``hsm.cv_hierarchy.CvHierarchy``);
    ``number_digest``: DF31 as the card's integrity record holds it (SHA-256 of the
    physical EF ``0001``, which no counter operation rewrites)."""
    del hsm  # the signer is in ``signers``; kept for the shared signature
    attributes = encode_four_info(identity)
    digest = attributes_digest(attributes)
    signature = signers.cv.card_info_signer.sign(signed_part(number_digest, digest))
    record = encode_integrity_record(number_digest, digest, signature)
    session.rewrite_file(Aid.CARD_INFO, CardInfoFile.ATTRIBUTES, attributes)
    session.rewrite_file(Aid.CARD_INFO, CardInfoFile.INTEGRITY, record)
    session.rewrite_record(Aid.COMMON, CommonFile.CARD_INFO_RECORD, 1, encode_card_info_record(
        CardInfoRecord(card_serial, municipality_code, expiry)))


def reissue_signature_certificate(session: CounterSession, hsm: Hsm, signers: Any,
                                  card_serial: str, identity: FourInfo | None,
                                  card_expiry: dt.date, birth_date: dt.date, *,
                                  crl_base_url: str = DEFAULT_CRL_BASE_URL,
                                  today: dt.date | None = None,
                                  on_issued: Callable[[Any], None] | None = None) -> Any:
    """GENERATE KEY ``001A`` on the card, a certificate of the new key from
    ``resident-sign-ca`` (the 4 information in its subjectAltName; valid to the fifth
    birthday after today, at most the card's expiry), written to JPKI EF ``0001``.
    ``on_issued`` sees the certificate before it is written (the caller records it, so
    that a certificate the card never got can still be revoked). Returns the
    ``IssuedCertificate``."""
    from ..issuance.jpki_certs import (
        issue_jpki_certificate,
        jpki_not_after,
        write_jpki_certificate,
    )

    del signers  # the sign CA is looked up in the token by issue_jpki_certificate
    public_key = session.regenerate_key(Aid.JPKI, JpkiFile.SIGN_KEY)
    not_after = jpki_not_after(birth_date, today or dt.date.today(), card_expiry)
    issued = issue_jpki_certificate(hsm, "jpki-sign", public_key, card_serial, not_after,
                                    identity, crl_base_url)
    if on_issued is not None:
        on_issued(issued)
    write_jpki_certificate(session, "jpki-sign", issued.certificate)
    return issued


@dataclass(frozen=True)
class CounterSigners:
    """The token keys a counter rewrite signs with, looked up before any card I/O: the CV
    hierarchy (``cv.card_info_signer`` signs EF 0003). The JPKI sign CA is looked up by
    ``issue_jpki_certificate``."""

    cv: CvHierarchy

    @classmethod
    def current(cls, hsm: Hsm) -> CounterSigners:
        return cls(CvHierarchy.current(hsm))
