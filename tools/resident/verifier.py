"""The verifier: is the presented card a genuine, current, registered resident card?

Checks, in order (a check whose prerequisite failed is reported as not passed):
applications -> card_info -> registry_record -> certificate_chain ->
challenge_response -> registry_status. Genuine only if every check passes; the
challenge comes from the token's RNG and is redeemed once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cardlib.apps.common import CommonApSession
from cardlib.channel import ApduChannel
from cardlib.errors import ApduError, CardDataError
from hsm.ca import role_certificates
from hsm.chain import issuing_ca, within_validity
from hsm.roles import KeyRole
from hsm.token import Hsm
from hsm.verify import ChallengeBook, PublicKeyCache

from ..registry import Registry


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    genuine: bool
    card_serial: str | None
    checks: list[Check] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "genuine": self.genuine,
            "card_serial": self.card_serial,
            "checks": [c.as_json() for c in self.checks],
        }


class Verifier:
    def __init__(self, registry: Registry, keys: PublicKeyCache, challenges: ChallengeBook,
                 ca_certs: list[x509.Certificate]) -> None:
        self.registry = registry
        self.keys = keys
        self.challenges = challenges
        self.ca_certs = ca_certs

    @classmethod
    def from_token(cls, registry: Registry, hsm: Hsm) -> Verifier:
        return cls(registry, PublicKeyCache(hsm), ChallengeBook(hsm),
                   role_certificates(hsm, KeyRole.RESIDENT_ISSUING_CA))

    def verify(self, channel: ApduChannel) -> Verdict:
        checks: list[Check] = []

        def done(serial: str | None) -> Verdict:
            return Verdict(all(c.ok for c in checks) and len(checks) == 6, serial, checks)

        common = CommonApSession(channel)
        try:
            common.select()
        except ApduError as exc:
            checks.append(Check("applications", False, f"no common AP: {exc}"))
            return done(None)
        checks.append(Check("applications", True, "common AP selected by AID"))

        try:
            record = common.read_card_info()
        except (ApduError, CardDataError) as exc:
            checks.append(Check("card_info", False, str(exc)))
            return done(None)
        serial = record.card_serial
        expired = record.expiry < dt.datetime.now(dt.UTC).date()
        checks.append(Check("card_info", not expired,
                            f"serial {serial}, {'EXPIRED on' if expired else 'expiry'} {record.expiry}"))

        entry = self.registry.get(serial)
        if entry is None or entry.certificate is None:
            state = "unknown to the registry" if entry is None else f"registry status {entry.status}"
            checks.append(Check("registry_record", False, f"card {serial} {state}"))
            return done(serial)
        on_record = (entry.municipality_code, entry.expiry)
        on_card = (record.municipality_code, record.expiry.isoformat())
        if on_record != on_card:
            checks.append(Check("registry_record", False,
                                f"card says municipality/expiry {on_card}, registry {on_record}"))
        else:
            checks.append(Check("registry_record", True, "certificate on record, card data matches"))

        certificate = x509.load_der_x509_certificate(entry.certificate)
        checks.append(self._check_chain(certificate, serial))
        checks.append(self._challenge_response(common, certificate))
        ok = entry.status == "active"
        reason = f" ({entry.status_reason})" if entry.status_reason else ""
        checks.append(Check("registry_status", ok, f"registry status {entry.status}{reason}"))
        return done(serial)

    def _check_chain(self, certificate: x509.Certificate, serial: str) -> Check:
        if not within_validity(certificate):
            return Check("certificate_chain", False, "certificate outside its validity period")
        subject_serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if not subject_serial or subject_serial[0].value != serial:
            return Check("certificate_chain", False, "certificate names another card")
        ca = issuing_ca(certificate, self.ca_certs)
        if ca is None:
            return Check("certificate_chain", False, "not issued by any issuing CA in the token")
        common_name = str(ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        return Check("certificate_chain", True, f"issued by {common_name}")

    def _challenge_response(self, common: CommonApSession, certificate: x509.Certificate) -> Check:
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            return Check("challenge_response", False, "certified key is not RSA")
        challenge = self.challenges.issue()
        try:
            signature = common.internal_authenticate(challenge)
        except (ApduError, CardDataError) as exc:
            self.challenges.redeem(challenge)
            return Check("challenge_response", False, f"INTERNAL AUTHENTICATE failed: {exc}")
        if not self.challenges.redeem(challenge):
            return Check("challenge_response", False, "challenge already used")
        if not self.keys.verify_rsa_sha256(public_key, challenge, signature):
            return Check("challenge_response", False,
                         "signature over the token's challenge does not verify")
        return Check("challenge_response", True, "card signed a fresh 32-byte token challenge")
