"""Enrolling an operator: a blank PIV card becomes their operator card.

Steps: read the CHUID (GUID) → reserve the operator and card in the registry
(``enrolling``) → mutual authentication with the card's management key (derived in
the token from the GUID) → generate 9A (the login key) and 9E on the card → certify both
with the operator CA in the token → PUT DATA the certificates → set PIN and PUK → the
registry row becomes ``active`` with the certificate. A failure marks the row
``failed``; running the same enrolment again takes it over and finishes the card.
"""

from __future__ import annotations

import datetime as dt
import pwd
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from cardlib.apps.piv import PivSession
from cardlib.channel import ApduChannel
from cardlib.checkdigits import is_valid_municipality_code
from cardlib.constants import PIV_DEFAULT_PUK, PivAlgorithm, PivKeyRef
from cardlib.errors import InvalidPinError
from hsm.ca import CardCertificateRequest, TokenKey, issue_certificate
from hsm.piv_management import management_key
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import RequestError
from ..pki.issued import DEFAULT_CRL_BASE_URL, IssuedCertificate, crl_url
from ..registry import Registry
from ..station.pins import Pin

OPERATOR_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
UNIX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
CERTIFICATE_VALIDITY = dt.timedelta(days=3 * 365)
ALGORITHMS = {"p256": PivAlgorithm.ECC_P256, "rsa2048": PivAlgorithm.RSA_2048}


def _is_superuser(login: str) -> bool:
    """``root``, or any account of this machine with uid 0."""
    try:
        return login == "root" or pwd.getpwnam(login).pw_uid == 0
    except KeyError:
        return False


@dataclass(frozen=True)
class EnrolmentRequest:
    operator_id: str
    name: str
    municipality_code: str
    scopes: frozenset[str]
    unix_user: str | None
    algorithm: int

    def __post_init__(self) -> None:
        if not OPERATOR_ID.match(self.operator_id):
            raise RequestError("id", "1-32 of A-Z a-z 0-9 . _ -, starting with a letter or digit")
        if not self.name.strip() or len(self.name) > 64:
            raise RequestError("name", "1 to 64 characters")
        if not is_valid_municipality_code(self.municipality_code):
            raise RequestError("municipality", "6 digits with a valid check digit")
        if self.unix_user is not None and not UNIX_USER.match(self.unix_user):
            raise RequestError("unix-user", "a login name (a-z 0-9 _ -, up to 32)")
        if self.unix_user is not None and _is_superuser(self.unix_user):
            raise RequestError("unix-user", f"{self.unix_user} is a superuser (uid 0): the PAM "
                                            "hook never lets an operator card log in as root")


@dataclass(frozen=True)
class EnrolledOperator:
    operator_id: str
    card_guid: str
    algorithm: str
    certificate_serial: str
    not_after: str

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


def _set_pin_and_puk(piv: PivSession, pin: Pin, puk: Pin) -> None:
    """RESET RETRY COUNTER with the factory PUK sets the PIN whatever it was; then the PUK
    itself changes. A card whose PUK an interrupted enrolment already changed takes the
    operator's new PUK instead (costing one PUK try)."""
    try:
        piv.unblock_pin(PIV_DEFAULT_PUK, pin.reveal())
    except InvalidPinError:
        piv.unblock_pin(puk.reveal(), pin.reveal())
        return
    piv.change_reference(PivKeyRef.PUK, PIV_DEFAULT_PUK, puk.reveal())


def enrol_operator(channel: ApduChannel, hsm: Hsm, registry: Registry, request: EnrolmentRequest,
                   pin: Pin, puk: Pin, actor: str | None,
                   crl_base_url: str = DEFAULT_CRL_BASE_URL) -> EnrolledOperator:
    piv = PivSession(channel)
    piv.select()
    guid = piv.read_chuid().guid
    registry.begin_enrolment(request.operator_id, request.name, request.municipality_code,
                             request.scopes, request.unix_user, guid.hex().upper(), actor)
    try:
        ca = TokenKey.current(hsm, KeyRole.OPERATOR_CA)
        role, version = ca.signer.role.value, ca.signer.version
        url = crl_url(crl_base_url, role, version)
        not_after = (dt.datetime.now(dt.UTC) + CERTIFICATE_VALIDITY).date()
        with management_key(hsm, guid) as cipher:
            piv.authenticate_management(cipher)
            auth_key = piv.generate_key(PivKeyRef.AUTHENTICATION, request.algorithm)
            card_key = piv.generate_key(PivKeyRef.CARD_AUTHENTICATION, PivAlgorithm.ECC_P256)
            auth_cert = issue_certificate(ca, CardCertificateRequest(
                auth_key, guid.hex().upper(), not_after, common_name=request.operator_id,
                unit=request.municipality_code, client_auth=True, crl_url=url))
            card_cert = issue_certificate(ca, CardCertificateRequest(
                card_key, guid.hex().upper(), not_after, common_name="Juki Operator Card",
                unit=request.municipality_code, crl_url=url))
            piv.put_certificate(PivKeyRef.AUTHENTICATION, auth_cert)
            piv.put_certificate(PivKeyRef.CARD_AUTHENTICATION, card_cert)
        with piv.pin_forgotten():
            _set_pin_and_puk(piv, pin, puk)
        registry.complete_enrolment(
            request.operator_id, auth_cert.public_bytes(serialization.Encoding.DER), actor,
            tuple(IssuedCertificate("operator", c, role, version) for c in (auth_cert, card_cert)))
    except BaseException as exc:
        registry.fail_enrolment(request.operator_id, str(exc) or type(exc).__name__)
        raise
    algorithm = next(name for name, value in ALGORITHMS.items() if value == request.algorithm)
    return EnrolledOperator(request.operator_id, guid.hex().upper(), algorithm,
                            f"{auth_cert.serial_number:X}", not_after.isoformat())
