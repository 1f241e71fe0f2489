"""The issuance station: personalise a blank resident card and register it.

Order matters for atomicity: the registry row is ``issuing`` before the first write
to the card; it becomes ``active`` only after the card is locked; any failure in
between marks it ``failed`` (re-issuable once the card is wiped, see the station
issue). The card's key pair is generated on the card; the token certifies it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardlib import tlv
from cardlib.apps.base import WritableApSession, open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.apps.resident_registry import open_registry
from cardlib.channel import ApduChannel
from cardlib.constants import (
    JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD,
    JPKI_TOKEN_INFO_LENGTH,
    SCP03_KVN,
    Aid,
    CardInfoFile,
    CommonFile,
    JpkiFile,
    LifeCycle,
    RegistryFile,
)
from cardlib.integrity import encode_integrity_record, hashes_of, signed_part
from cardlib.records import (
    CardInfoRecord,
    encode_card_info_record,
    encode_four_info,
    encode_individual_number,
)
from cardlib.registry_records import encode_code, encode_history
from hsm.ca import CardCertificateRequest, TokenKey, issue_certificate
from hsm.diversify import CardKeys, KeySet, card_keys
from hsm.errors import HsmError
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import IssuanceError
from ..registry import Registry
from ..station.card_keys import put_key_components, token_prfs
from ..station.pins import ResidentCardPins
from .recovery import (
    fail_if_interrupted,
    fail_interrupted_of_resident,
    this_process,
    wipe_card,
)
from .request import IdentityRequest

log = logging.getLogger(__name__)

CARD_VALIDITY_YEARS = 10
JPKI_OTHER_NAME_ARC = "1.2.392.200149.8.5.5"
UTF8_STRING = 0x0C
BASIC_INFO_VERSION = b"\x00\x00\x00\x01"


@dataclass(frozen=True)
class IssuedCard:
    card_serial: str
    municipality_code: str
    expiry: dt.date
    certificate_pem: str

    def as_json(self) -> dict[str, str]:
        return {
            "card_serial": self.card_serial,
            "municipality_code": self.municipality_code,
            "expiry": self.expiry.isoformat(),
            "status": "active",
        }


def expiry_for(issued: dt.date) -> dt.date:
    """Ten years after issuance (Feb 29 falls back to Feb 28)."""
    try:
        return issued.replace(year=issued.year + CARD_VALIDITY_YEARS)
    except ValueError:
        return issued.replace(year=issued.year + CARD_VALIDITY_YEARS, day=28)


def basic_info(public_key_der: bytes) -> bytes:
    """EF 0005 of the card-info AP: ``FF 40 { DF41 version, DF42 key id }``."""
    key_id = hashlib.sha256(public_key_der).digest()[:16]
    return tlv.Tlv.build(0xFF40, tlv.Tlv(0xDF41, BASIC_INFO_VERSION), tlv.Tlv(0xDF42, key_id)).encode()


@dataclass(frozen=True)
class StationSigners:
    """The token keys an issuance signs with, looked up once (before any card I/O)."""

    ca: TokenKey
    integrity: TokenKey

    @classmethod
    def current(cls, hsm: Hsm) -> StationSigners:
        return cls(TokenKey.current(hsm, KeyRole.RESIDENT_ISSUING_CA),
                   TokenKey.current(hsm, KeyRole.INTEGRITY_SIGNER))


def integrity_record(signer: TokenKey, number_object: bytes, attributes_object: bytes) -> bytes:
    """EF 0003: hashes of the number and attributes objects, signed in the token."""
    number_hash, attributes_hash = hashes_of(number_object, attributes_object)
    signature = signer.signer.sign(signed_part(number_hash, attributes_hash), padding.PKCS1v15(),
                                   hashes.SHA256())
    return encode_integrity_record(number_hash, attributes_hash, signature)


def four_info_other_names(request: IdentityRequest) -> tuple[tuple[str, bytes], ...]:
    """The 4 information as subjectAltName otherName entries (OIDs 1.2.392.200149.8.5.5.x),
    each a UTF8String."""
    values = [("1", request.name), ("2", request.name_kana), ("3", request.sex),
              ("4", request.birth_date.strftime("%Y%m%d")), ("5", request.address)]
    return tuple((f"{JPKI_OTHER_NAME_ARC}.{index}", tlv.Tlv(UTF8_STRING, value.encode()).encode())
                 for index, value in values if value)


def personalise_jpki_ap(channel: ApduChannel, ca: TokenKey, serial: str, expiry: dt.date,
                        request: IdentityRequest, pins: ResidentCardPins) -> None:
    """Two RSA-2048 key pairs generated on the card, certified by the issuing CA in the
    token; the signature certificate carries the 4 information; PINs set."""
    jpki = WritableApSession(channel, Aid.JPKI)
    jpki.select()
    auth_key = jpki.generate_rsa_key(JpkiFile.AUTH_KEY)
    sign_key = jpki.generate_rsa_key(JpkiFile.SIGN_KEY)
    auth = issue_certificate(ca, CardCertificateRequest(auth_key, serial, expiry,
                                                         "JPKI User Authentication"))
    sign = issue_certificate(ca, CardCertificateRequest(
        sign_key, serial, expiry, "JPKI Digital Signature", non_repudiation=True,
        other_names=four_info_other_names(request)))
    ca_der = ca.certificate.public_bytes(serialization.Encoding.DER)
    for fid, content in ((JpkiFile.AUTH_CERT, auth.public_bytes(serialization.Encoding.DER)),
                         (JpkiFile.AUTH_CA_CERT, ca_der),
                         (JpkiFile.SIGN_CERT, sign.public_bytes(serialization.Encoding.DER)),
                         (JpkiFile.SIGN_CA_CERT, ca_der),
                         (JpkiFile.TOKEN_INFO, JPKI_TOKEN_INDIVIDUAL_NUMBER_CARD.encode().ljust(
                             JPKI_TOKEN_INFO_LENGTH))):
        jpki.write_file(fid, content)
    jpki.set_pin(JpkiFile.AUTH_PIN, pins.jpki_auth.reveal())
    jpki.set_pin(JpkiFile.SIGN_PIN, pins.jpki_sign.reveal())


def personalise_registry_ap(plain: ApduChannel, secure_isd: ApduChannel, transport: CardKeys,
                            registry_keys: CardKeys, code: str) -> None:
    """Load the resident-registry AP's keys (PUT KEY through the issuer domain's SCP03
    channel, wrapped under the card's transport DEK inside the token), then write the
    record code and an empty history through the AP's own level-33 channel."""
    issuer = IssuerSession(secure_isd)
    issuer.select()
    issuer.put_key(Aid.RESIDENT_REGISTRY, SCP03_KVN, put_key_components(registry_keys, transport))
    registry = open_registry(plain, token_prfs(registry_keys))  # ends the issuer session
    registry.write_file(RegistryFile.RECORD_CODE, encode_code(code))
    registry.write_file(RegistryFile.CHANGE_HISTORY, encode_history([]))


def personalise(plain: ApduChannel, hsm: Hsm, signers: StationSigners, serial: str,
                expiry: dt.date, request: IdentityRequest,
                pins: ResidentCardPins) -> x509.Certificate:
    """Everything written to a blank card, all of it under SCP03 level 33: the issuer
    domain's session (transport keys) spans the applications until the registry AP's
    own session; a last issuer session locks the card. Returns the common AP cert."""
    with card_keys(hsm, serial, KeySet.ISSUER_TRANSPORT) as transport, \
            card_keys(hsm, serial, KeySet.RESIDENT_REGISTRY) as registry_keys:
        secure = open_secure(plain, IssuerSession, token_prfs(transport)).channel
        common = WritableApSession(secure, Aid.COMMON)
        common.select()
        common.write_file(CommonFile.CARD_INFO_RECORD, encode_card_info_record(
            CardInfoRecord(serial, request.municipality_code, expiry)))
        public_key = common.generate_rsa_key(CommonFile.AUTH_KEY)
        certificate = issue_certificate(signers.ca, CardCertificateRequest(public_key, serial, expiry))
        personalise_card_info_ap(secure, signers.integrity, request, pins, public_key)
        personalise_jpki_ap(secure, signers.ca, serial, expiry, request, pins)
        personalise_registry_ap(plain, secure, transport, registry_keys, request.resident_code)
        lock = open_secure(plain, IssuerSession, token_prfs(transport))
        assert isinstance(lock, IssuerSession)
        lock.lock()
    return certificate


def personalise_card_info_ap(secure: ApduChannel, integrity: TokenKey, request: IdentityRequest,
                             pins: ResidentCardPins, auth_key: rsa.RSAPublicKey) -> None:
    card_info = WritableApSession(secure, Aid.CARD_INFO)
    card_info.select()
    attributes = encode_four_info(request.four_info())
    card_info.write_file(CardInfoFile.ATTRIBUTES, attributes)
    number = b""
    if request.individual_number:
        number_file = encode_individual_number(request.individual_number)
        card_info.write_file(CardInfoFile.INDIVIDUAL_NUMBER, number_file)
        number = tlv.parse_one(number_file)[0].encode()
    card_info.write_file(CardInfoFile.INTEGRITY, integrity_record(integrity, number, attributes))
    card_info.write_file(CardInfoFile.BASIC_INFO, basic_info(auth_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)))
    card_info.set_pin(CardInfoFile.PIN, pins.card_info.reveal())


def issue_resident_card(
    channel: ApduChannel,
    hsm: Hsm,
    registry: Registry,
    request: IdentityRequest,
    pins: ResidentCardPins,
    today: dt.date | None = None,
    reissue_of: str | None = None,
) -> IssuedCard:
    """Issue a blank card; with ``reissue_of``, a new card for that card's resident,
    the old one revoked as superseded in the same registry transaction."""
    signers = StationSigners.current(hsm)  # these fail before any card I/O

    fail_interrupted_of_resident(registry, request.resident_code)
    registry.check_can_issue(request.resident_code, reissue_of)
    issuer = IssuerSession(channel)
    issuer.select()
    info = issuer.read_info()
    serial = info.card_serial
    fail_if_interrupted(registry, serial)
    if info.life_cycle != LifeCycle.OP_READY:
        previous = registry.get(serial)
        if previous is None or previous.status != "failed":
            raise IssuanceError(f"card {serial} is not blank (life cycle {info.life_cycle.name})")
        log.warning("card %s is locked but its issuance failed: wiping it first", serial)
        wipe_card(channel, hsm, serial)
    expiry = expiry_for(today or dt.date.today())
    registry.begin_issuance(serial, "resident", request.resident_code, request.municipality_code,
                            expiry, reissue_of=reissue_of, owner=this_process())
    log.info("issuing card %s", serial)
    try:
        certificate = personalise(channel, hsm, signers, serial, expiry, request, pins)
    except (Exception, KeyboardInterrupt) as exc:
        reason = type(exc).__name__ if isinstance(exc, HsmError | KeyboardInterrupt) else str(exc)
        registry.mark_failed(serial, reason or type(exc).__name__)
        raise
    der = certificate.public_bytes(serialization.Encoding.DER)
    identity = {"name": request.name, "name_kana": request.name_kana, "sex": request.sex,
                "birth_date": request.birth_date.isoformat(), "address": request.address}
    registry.complete_issuance(serial, der, supersedes=reissue_of, identity=identity)
    return IssuedCard(serial, request.municipality_code, expiry,
                      certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"))
