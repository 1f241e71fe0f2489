"""Reading the card-info AP with its integrity record checked, and the card overview
(`juki card info`) that spends no PIN try."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.base import ApplicationSession
from cardlib.apps.card_info import CardInfoApSession, CardInfoKey
from cardlib.apps.common import CommonApSession
from cardlib.apps.jpki import JpkiApSession
from cardlib.apps.resident_registry import ResidentRegistrySession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile, CommonFile, JpkiFile, JukiFile
from cardlib.cv_certificate import CvCertificate, decode_cv_certificate, verify_cv_chain
from cardlib.errors import ApduError, CardDataError
from cardlib.integrity import decode_integrity_record
from cardlib.records import FourInfo, decode_four_info, decode_individual_number

from ..station.pins import Pin


class What(StrEnum):
    IDENTITY = "identity"
    NUMBER = "number"
    ALL = "all"


# What each credential can release (RC §4.1): A opens EF 0001 only, B EF 0002 only.
RELEASABLE: dict[CardInfoKey, frozenset[What]] = {
    CardInfoKey.PIN: frozenset({What.IDENTITY, What.NUMBER, What.ALL}),
    CardInfoKey.COLLATION_A: frozenset({What.NUMBER}),
    CardInfoKey.COLLATION_B: frozenset({What.IDENTITY}),
}
CREDENTIAL_KEYS = {"pin": CardInfoKey.PIN, "a": CardInfoKey.COLLATION_A,
                   "b": CardInfoKey.COLLATION_B}


@dataclass(frozen=True)
class CardInfoReading:
    four_info: FourInfo | None
    individual_number: str | None
    integrity: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.four_info is not None:
            data.update(self.four_info.as_json())
        if self.individual_number is not None or self.four_info is None:
            data["individual_number"] = self.individual_number
        data["integrity"] = self.integrity
        return data


@dataclass(frozen=True)
class Credential:
    """The credential presented to the card-info AP (``key``, ``secret``); with
    ``secure``, the reads go under the AP's secure messaging, which the PIN opens (in the
    clear) first: ``pin`` is then required even when ``key`` is 照合番号A or B.
    ``presented``: the verifier has just presented the first of them in this selection of
    the AP (`authenticated_card`), so it is not presented again (one VERIFY)."""

    key: CardInfoKey
    secret: Pin
    secure: bool = False
    pin: Pin | None = None
    presented: bool = False

    def __repr__(self) -> str:
        return f"Credential({self.key.name}, secure={self.secure})"


def _open(session: CardInfoApSession, credential: Credential) -> CardInfoApSession:
    """SELECT, present the credential (after the PIN and SET SESSION KEY with --secure);
    the session to read through."""
    session.select()  # the same AP again: its security status stays (JICSAP 5.1.3 rule 2)
    if not credential.secure:
        if not credential.presented:
            session.present(credential.key, credential.secret.reveal())
        return session
    pin = credential.secret if credential.key is CardInfoKey.PIN else credential.pin
    if pin is None:
        raise ValueError("secure messaging needs the card-info PIN first (in the clear)")
    if not credential.presented:
        session.present(CardInfoKey.PIN, pin.reveal())
    secure = session.open_secure_messaging()
    if credential.key is not CardInfoKey.PIN:
        secure.present(credential.key, credential.secret.reveal())
    return secure


def signer_certificate(session: CardInfoApSession,
                       anchors: Mapping[bytes, rsa.RSAPublicKey]) -> CvCertificate:
    """EF 0004, the AP's CV certificate, verified up to a trust anchor (its issuer)."""
    certificate = decode_cv_certificate(session.read_file(CardInfoFile.CV_CERTIFICATE))
    return verify_cv_chain([certificate], anchors, role="card-info")


def read_card_info(session: CardInfoApSession, credential: Credential, what: What,
                   anchors: Mapping[bytes, rsa.RSAPublicKey]) -> CardInfoReading:
    """What was asked for, released only if the integrity record (EF 0003) verifies
    under the key of EF 0004, whose CV certificate chains to a trust anchor, and the
    digests of what is released match: DF31 over the physical EF 0001, DF32 over EF 0002
    without its offset table. A credential releases only what it opens."""
    if what not in RELEASABLE[credential.key]:
        raise ValueError(f"{credential.key.name} does not open {what.value}")
    reader = _open(session, credential)
    certificate = signer_certificate(reader, anchors)
    record = decode_integrity_record(reader.read_file(CardInfoFile.INTEGRITY))
    if not record.verifies_under(certificate.public_key):
        raise CardDataError(f"integrity record: DF33 does not verify under the key of EF 0004 "
                            f"({certificate.holder})")
    want_identity = what in (What.IDENTITY, What.ALL)
    want_number = what in (What.NUMBER, What.ALL)
    attributes = reader.read_file(CardInfoFile.ATTRIBUTES) if want_identity else None
    number = reader.read_file(CardInfoFile.INDIVIDUAL_NUMBER) if want_number else None
    mismatches = record.mismatches(number, attributes)
    if mismatches:
        raise CardDataError(f"integrity record does not match: {', '.join(mismatches)}")
    return CardInfoReading(
        four_info=decode_four_info(attributes) if attributes is not None else None,
        individual_number=decode_individual_number(number) if number and number.strip(b"\xff")
        else None,  # a file of filler only: issued without a number (DF31 still covers it)
        integrity={"signature_ok": True, "digests_ok": True, "signer": str(certificate.holder),
                   "anchor": str(certificate.issuer), "secure_messaging": credential.secure,
                   "credential": credential.key.name.lower(),
                   "checked": [f for f, on in (("DF31", want_number), ("DF32", want_identity))
                               if on]},
    )


@dataclass(frozen=True)
class CardOverview:
    applications: list[str]
    card_serial: str | None = None
    municipality_code: str | None = None
    expiry: str | None = None
    token: str | None = None
    pins: dict[str, dict[str, object]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


PINS: dict[str, tuple[type[ApplicationSession], int]] = {
    "card_info": (CardInfoApSession, CardInfoFile.PIN),
    "jpki_auth": (JpkiApSession, JpkiFile.AUTH_PIN),
    "jpki_sign": (JpkiApSession, JpkiFile.SIGN_PIN),
    "common": (CommonApSession, CommonFile.PIN),  # 共通AP 001C
    "juki": (ResidentRegistrySession, JukiFile.PIN),  # 住基AP 001C (VERIFY in the clear)
}


def change_pin(channel: ApduChannel, pin_name: str, current: Pin, new: Pin) -> None:
    """VERIFY ``current``, then CHANGE REFERENCE DATA to ``new``, for one of ``PINS``."""
    session_class, pin_fid = PINS[pin_name]
    session = session_class(channel)
    session.select()
    session.verify_pin(current.reveal(), pin_fid)
    session.change_pin(new.reveal(), pin_fid)


def pin_statuses(channel: ApduChannel, applications: list[str]) -> dict[str, dict[str, object]]:
    """Every PIN's retry state by empty VERIFY: no try is spent."""
    result: dict[str, dict[str, object]] = {}
    for name, (session_class, pin_fid) in PINS.items():
        if Aid(session_class.AID).name not in applications:
            continue
        session = session_class(channel)
        session.select()
        try:
            result[name] = session.pin_status(pin_fid).as_json()
        except ApduError as exc:  # e.g. 6984: the PIN was never set (blank card)
            result[name] = {"error": str(exc)}
    return result


def overview(channel: ApduChannel, applications: list[str]) -> CardOverview:
    serial = municipality = expiry = token = None
    if Aid.COMMON.name in applications:
        common = CommonApSession(channel)
        common.select()
        try:
            record = common.read_card_info()
            serial, municipality, expiry = (record.card_serial, record.municipality_code,
                                            record.expiry.isoformat())
        except (ApduError, CardDataError):
            pass  # a blank card has no card-info record yet
    if Aid.JPKI.name in applications:
        jpki = JpkiApSession(channel)
        jpki.select()
        with suppress(ApduError, CardDataError):  # blank: no token info yet
            token = jpki.read_token_info() or None
    return CardOverview(applications, serial, municipality, expiry, token,
                        pin_statuses(channel, applications))

