"""Reading the card-info AP with its integrity record checked, and the card overview
(`juki card info`) that spends no PIN try."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.base import ApplicationSession
from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.apps.jpki import JpkiApSession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile, JpkiFile
from cardlib.errors import ApduError, CardDataError, EndOfFileError
from cardlib.integrity import IntegrityRecord, decode_integrity_record
from cardlib.records import FourInfo, decode_four_info, decode_individual_number
from hsm.ca import role_certificates
from hsm.roles import KeyRole
from hsm.token import Hsm
from hsm.verify import PublicKeyCache

from ..station.pins import Pin


class What(StrEnum):
    IDENTITY = "identity"
    NUMBER = "number"
    ALL = "all"


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


class IntegrityChecker:
    """Checks EF 0003 signatures against the integrity signer certificates in the token."""

    def __init__(self, hsm: Hsm) -> None:
        self._keys = PublicKeyCache(hsm)
        self._certs = role_certificates(hsm, KeyRole.INTEGRITY_SIGNER)

    def signer_of(self, record: IntegrityRecord) -> str | None:
        for cert in self._certs:
            key = cert.public_key()
            if isinstance(key, rsa.RSAPublicKey) and self._keys.verify_rsa_sha256(
                    key, record.signed_part(), record.signature):
                return cert.subject.rfc4514_string()
        return None


def _object_or_empty(session: ApplicationSession, fid: int) -> bytes:
    try:
        return session.read_tlv_file(fid)
    except EndOfFileError:
        return b""  # an empty file (no individual number on this card)


def read_card_info(session: CardInfoApSession, pin: Pin, what: What,
                   checker: IntegrityChecker) -> CardInfoReading:
    """After the PIN: what was asked for, released only if the integrity record's
    signature verifies and the hashes of what is released match."""
    session.select()
    session.verify_pin(pin.reveal())
    record = decode_integrity_record(session.read_tlv_file(CardInfoFile.INTEGRITY))
    signer = checker.signer_of(record)
    if signer is None:
        raise CardDataError("integrity record: signature does not verify with any integrity "
                            "signer in the token")
    want_identity = what in (What.IDENTITY, What.ALL)
    want_number = what in (What.NUMBER, What.ALL)
    attributes = session.read_tlv_file(CardInfoFile.ATTRIBUTES) if want_identity else None
    number = _object_or_empty(session, CardInfoFile.INDIVIDUAL_NUMBER) if want_number else None
    mismatches = [m for m in record.mismatches(number or b"", attributes or b"")
                  if (want_number and "DF31" in m) or (want_identity and "DF32" in m)]
    if mismatches:
        raise CardDataError(f"integrity record does not match: {', '.join(mismatches)}")
    return CardInfoReading(
        four_info=decode_four_info(attributes) if attributes is not None else None,
        individual_number=decode_individual_number(number) if number else None,
        integrity={"signature_ok": True, "hashes_ok": True, "signer": signer,
                   "checked": [f for f, on in (("DF31", want_number), ("DF32", want_identity)) if on]},
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

