"""The issuance station: personalise a blank resident card and register it.

Order matters for atomicity: the registry row is ``issuing`` before the first write
to the card; it becomes ``active`` only after the card is locked; any failure in
between marks it ``failed`` (re-issuable once the card is wiped, see the station
issue). Every key pair is generated on the card; the token certifies and signs.

What each application receives is in ``mf_objects``, ``public_aps`` and
``card_info_ap``; the card-face application is written by ``surface``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.base import open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.apps.resident_registry import open_registry
from cardlib.channel import ApduChannel
from cardlib.collation import collation_b
from cardlib.constants import SCP03_KVN, Aid, LifeCycle, RegistryFile
from cardlib.registry_records import encode_code, encode_history
from hsm.ca import CardCertificateRequest, TokenKey, issue_certificate
from hsm.cv_hierarchy import CvHierarchy
from hsm.diversify import CardKeys, KeySet, card_keys
from hsm.errors import HsmError
from hsm.token import Hsm

from ..errors import IssuanceError
from ..pki.issued import DEFAULT_CRL_BASE_URL, crl_url
from ..registry import Registry
from ..station.card_keys import put_key_components, token_prfs
from ..station.pins import ResidentCardPins
from .card_face_images import ensure_font
from .card_info_ap import personalise_card_info_ap
from .jpki_certs import IssuedCertificate, JpkiSigners
from .mf_objects import mf_objects, personalise_mf
from .public_aps import personalise_common_ap, personalise_jpki_ap, personalise_juki_public
from .recovery import (
    fail_if_interrupted,
    fail_interrupted_of_resident,
    this_process,
    wipe_card,
)
from .request import IdentityRequest
from .security_code import SecurityCode
from .surface import personalise_surface_ap

log = logging.getLogger(__name__)

CARD_VALIDITY_YEARS = 10


@dataclass(frozen=True)
class IssuedCard:
    card_serial: str
    municipality_code: str
    expiry: dt.date
    certificate_pem: str
    security_code: SecurityCode

    def as_json(self) -> dict[str, object]:
        """The issuance answer; ``card_face`` is what the card face prints and is said
        only here, once (the registry never holds the security code)."""
        return {
            "card_serial": self.card_serial,
            "municipality_code": self.municipality_code,
            "expiry": self.expiry.isoformat(),
            "status": "active",
            "card_face": {"security_code": self.security_code.reveal()},
        }


def expiry_for(issued: dt.date) -> dt.date:
    """Ten years after issuance (Feb 29 falls back to Feb 28)."""
    try:
        return issued.replace(year=issued.year + CARD_VALIDITY_YEARS)
    except ValueError:
        return issued.replace(year=issued.year + CARD_VALIDITY_YEARS, day=28)


@dataclass(frozen=True)
class StationSigners:
    """The token keys an issuance signs with, looked up once (before any card I/O): the
    JPKI CAs (X.509: the auth CA ``resident-issuing-ca`` also certifies the registry's
    certificate of the 共通AP key; ``resident-sign-ca`` the signature certificate) and our
    CV hierarchy (MF chain, card-info and surface records)."""

    jpki: JpkiSigners
    cv: CvHierarchy

    @property
    def ca(self) -> TokenKey:
        """The auth CA (``resident-issuing-ca``)."""
        return self.jpki.auth

    @classmethod
    def current(cls, hsm: Hsm) -> StationSigners:
        return cls(JpkiSigners.current(hsm), CvHierarchy.current(hsm))


def personalise_registry_ap(plain: ApduChannel, secure_isd: ApduChannel, transport: CardKeys,
                            registry_keys: CardKeys, code: str, key_reference: bytes,
                            pin: str) -> None:
    """Load the 住基AP's keys (PUT KEY through the issuer domain's SCP03 channel, wrapped
    under the card's transport DEK inside the token), then, through the AP's own level-33
    channel, its public parts and our record code and empty history."""
    issuer = IssuerSession(secure_isd)
    issuer.select()
    issuer.put_key(Aid.RESIDENT_REGISTRY, SCP03_KVN, put_key_components(registry_keys, transport))
    registry = open_registry(plain, token_prfs(registry_keys))  # ends the issuer session
    personalise_juki_public(registry.channel, key_reference, pin)
    registry.write_file(RegistryFile.RECORD_CODE, encode_code(code))
    registry.write_file(RegistryFile.CHANGE_HISTORY, encode_history([]))


def card_key_certificate(ca: TokenKey, public_key: rsa.RSAPublicKey, serial: str,
                         expiry: dt.date, crl_base_url: str) -> IssuedCertificate:
    """The registry's certificate of the 共通AP key ``0019`` (kind ``card``): by the auth
    CA, until the card's expiry."""
    role, version = ca.signer.role.value, ca.signer.version
    certificate = issue_certificate(ca, CardCertificateRequest(
        public_key, serial, expiry, crl_url=crl_url(crl_base_url, role, version)))
    return IssuedCertificate("card", certificate, role, version)


def personalise(plain: ApduChannel, hsm: Hsm, signers: StationSigners, serial: str,
                expiry: dt.date, request: IdentityRequest, pins: ResidentCardPins,
                code: SecurityCode, issued: dt.date,
                crl_base_url: str) -> tuple[IssuedCertificate, ...]:
    """Everything written to a blank card, all of it under SCP03 level 33: the issuer
    domain's session (transport keys) spans the applications until the 住基AP's own
    session; a last issuer session locks the card. Returns the certificates issued: the
    registry's certificate of the 共通AP key (kind ``card``), JPKI auth and sign."""
    card_info_pin = pins.card_info.reveal()
    key_reference = signers.cv.mf_intermediate.key_id.raw
    with card_keys(hsm, serial, KeySet.ISSUER_TRANSPORT) as transport, \
            card_keys(hsm, serial, KeySet.RESIDENT_REGISTRY) as registry_keys:
        secure = open_secure(plain, IssuerSession, token_prfs(transport)).channel
        common_key = personalise_common_ap(secure, serial, request.municipality_code, expiry,
                                           key_reference, card_info_pin)
        card_certificate = card_key_certificate(signers.ca, common_key, serial, expiry,
                                                crl_base_url)
        personalise_mf(IssuerSession(secure), mf_objects(
            signers.cv, serial, request.municipality_code, expiry, common_key))
        personalise_card_info_ap(secure, signers.cv, request, card_info_pin,
                                 collation_b(request.birth_date, expiry, code.reveal()))
        personalise_surface_ap(secure, signers.cv.surface_signer,
                               signers.cv.surface_certificate.encode(), request, expiry,
                               code.reveal(), request.individual_number)
        jpki = personalise_jpki_ap(secure, signers.jpki, serial, expiry, request,
                                   pins.jpki_auth.reveal(), pins.jpki_sign.reveal(), issued,
                                   crl_base_url)
        personalise_registry_ap(plain, secure, transport, registry_keys, request.resident_code,
                                key_reference, card_info_pin)
        lock = open_secure(plain, IssuerSession, token_prfs(transport))
        assert isinstance(lock, IssuerSession)
        lock.lock()
    return card_certificate, *jpki


def issue_resident_card(
    channel: ApduChannel,
    hsm: Hsm,
    registry: Registry,
    request: IdentityRequest,
    pins: ResidentCardPins,
    today: dt.date | None = None,
    reissue_of: str | None = None,
    crl_base_url: str = DEFAULT_CRL_BASE_URL,
) -> IssuedCard:
    """Issue a blank card; with ``reissue_of``, a new card for that card's resident,
    the old one revoked as superseded in the same registry transaction. Every
    certificate names its CA's CRL under ``crl_base_url`` (``[crl] base_url``)."""
    signers = StationSigners.current(hsm)  # these fail before any card I/O
    ensure_font()  # so does a station without the card surface's font

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
    issued = today or dt.date.today()
    expiry = expiry_for(issued)
    registry.begin_issuance(serial, "resident", request.resident_code, request.municipality_code,
                            expiry, reissue_of=reissue_of, owner=this_process())
    log.info("issuing card %s", serial)
    code = SecurityCode.generate()
    identity = {"name": request.name, "name_kana": request.name_kana, "sex": request.sex,
                "birth_date": request.birth_date.isoformat(), "address": request.address}
    try:
        certificates = personalise(channel, hsm, signers, serial, expiry, request, pins, code,
                                   issued, crl_base_url)
        certificate = certificates[0].certificate
        # a failure here (the token failing the event log's MAC inside the transaction)
        # leaves a locked card whose registry row is still issuing: failed, like any other
        registry.complete_issuance(serial, certificate.public_bytes(serialization.Encoding.DER),
                                   supersedes=reissue_of, identity=identity,
                                   certificates=certificates)
    except (Exception, KeyboardInterrupt) as exc:
        reason = type(exc).__name__ if isinstance(exc, HsmError | KeyboardInterrupt) else str(exc)
        registry.mark_failed(serial, reason or type(exc).__name__)
        raise
    return IssuedCard(serial, request.municipality_code, expiry,
                      certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), code)
