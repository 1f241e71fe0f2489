"""Operator login: the card, its PIN, a fresh token challenge, the operator CA, the registry.

Order (each step only after the previous passed):
1. SELECT PIV; read the CHUID (card GUID) and the PIV Authentication certificate;
2. the certificate names the operator (CN); the registry knows them, they are active and
   not locked out, and this card and certificate are the ones enrolled for them;
3. the certificate chains to the operator CA in the token and is within its validity;
4. VERIFY the PIN on the card (the card counts tries and blocks after three);
5. GENERAL AUTHENTICATE with key 9A over a single-use challenge from the token's RNG,
   bound to this station and the login's purpose (``challenge``), the signature checked
   in the token against the certified key;
6. VERIFY ``00 20 FF 80`` makes the card forget the PIN (also when 4 or 5 failed).
Failures at 4 and 5 count towards the application lock-out; nothing here ever names
the PIN.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from cardlib.apps.piv import PivSession
from cardlib.channel import ApduChannel
from cardlib.constants import PivKeyRef
from cardlib.errors import ApduError, CardDataError, InvalidPinError, PinBlockedError
from cardlib.piv_objects import algorithm_of
from hsm.ca import role_certificates
from hsm.chain import issuing_ca, within_validity
from hsm.roles import KeyRole
from hsm.token import Hsm

from ..errors import LoginError
from ..registry import OperatorRecord, Registry
from ..station.home import OperatorPolicy
from ..station.pins import Pin
from .challenge import LoginChallenges, LoginPurpose


@dataclass(frozen=True)
class OperatorCard:
    """What the card in the reader says about its holder (before any PIN)."""

    guid: str
    certificate: x509.Certificate
    operator_id: str


def read_operator_card(piv: PivSession) -> OperatorCard:
    piv.select()
    guid = piv.read_chuid().guid_hex
    certificate = piv.read_certificate(PivKeyRef.AUTHENTICATION)
    if certificate is None:
        raise LoginError("the card holds no PIV Authentication certificate (not enrolled)")
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise LoginError("the card's certificate names no operator (no CN)")
    return OperatorCard(guid, certificate, str(names[0].value))


class OperatorAuthenticator:
    """Authenticates operator cards for one station (login, the PAM hook)."""

    def __init__(self, registry: Registry, hsm: Hsm, policy: OperatorPolicy, *,
                 station_id: str) -> None:
        self.registry = registry
        self.policy = policy
        self.challenges = LoginChallenges(hsm, station_id)
        self.ca_certs = role_certificates(hsm, KeyRole.OPERATOR_CA)

    def _fail(self, operator_id: str, reason: str) -> None:
        locked = self.registry.record_login_failure(
            operator_id, reason, limit=self.policy.max_failed_logins,
            window=self.policy.failed_login_window)
        if locked:
            raise LoginError(f"{reason}; operator {operator_id} is now locked out "
                             "(an operator-admin must run `juki operator unlock`)")

    def _registered(self, card: OperatorCard, expected: str | None) -> OperatorRecord:
        if expected is not None and card.operator_id != expected:
            raise LoginError(f"the card belongs to operator {card.operator_id}, not {expected}")
        operator = self.registry.operator(card.operator_id)
        if operator is None:
            raise LoginError(f"operator {card.operator_id} is not registered")
        if operator.status != "active":
            raise LoginError(f"operator {card.operator_id} is {operator.status}")
        if operator.locked_at is not None:
            raise LoginError(f"operator {card.operator_id} is locked out since "
                             f"{operator.locked_at} (too many failed logins)")
        enrolled = operator.certificate
        presented = card.certificate.public_bytes(serialization.Encoding.DER)
        if operator.card_guid != card.guid or enrolled != presented:
            raise LoginError(f"this card is not the card enrolled for {card.operator_id}")
        return operator

    def authenticate(self, channel: ApduChannel, pin: Pin, expected_operator: str | None = None,
                     purpose: LoginPurpose = LoginPurpose.SESSION) -> OperatorRecord:
        piv = PivSession(channel)
        try:
            card = read_operator_card(piv)
        except (ApduError, CardDataError) as exc:
            raise LoginError(f"not a usable operator card: {exc}") from None
        operator = self._registered(card, expected_operator)
        if not within_validity(card.certificate):
            raise LoginError("the operator certificate is outside its validity period")
        if issuing_ca(card.certificate, self.ca_certs) is None:
            raise LoginError("the operator certificate is not issued by the operator CA "
                             "in the token")
        with piv.pin_forgotten():  # the PIN is not left verified for the next program
            self._verify_pin(piv, pin, operator.operator_id)
            self._challenge_response(piv, card, operator.operator_id, purpose)
        return operator

    def _verify_pin(self, piv: PivSession, pin: Pin, operator_id: str) -> None:
        try:
            piv.verify_pin(pin.reveal())
        except InvalidPinError as exc:
            self._fail(operator_id, "wrong PIN")
            raise LoginError(f"wrong PIN ({exc.tries_left} tries left on the card)") from None
        except PinBlockedError:
            self._fail(operator_id, "PIN blocked")
            raise LoginError("the card's PIN is blocked: an operator-admin can reset it with "
                             "the PUK (`juki operator unblock`)") from None
        except ValueError:
            raise LoginError("a PIV PIN is 6 to 8 digits") from None

    def _challenge_response(self, piv: PivSession, card: OperatorCard, operator_id: str,
                            purpose: LoginPurpose) -> None:
        public_key = card.certificate.public_key()
        try:
            algorithm = algorithm_of(public_key)  # type: ignore[arg-type]
        except CardDataError as exc:
            raise LoginError(f"certified key: {exc}") from None
        nonce, message = self.challenges.mint(purpose)
        try:
            signature = piv.sign_sha256(PivKeyRef.AUTHENTICATION, algorithm, message)
        except (ApduError, CardDataError) as exc:
            self.challenges.redeem(nonce)
            self._fail(operator_id, "card did not answer the challenge")
            raise LoginError(f"GENERAL AUTHENTICATE failed: {exc}") from None
        if not self.challenges.redeem(nonce):
            raise LoginError("challenge already used")
        if not self.challenges.signed_here(nonce, purpose, public_key, signature):
            self._fail(operator_id, "bad challenge signature")
            raise LoginError("the card's signature over the token's challenge (bound to this "
                             f"station and purpose {purpose.value}) does not verify")
