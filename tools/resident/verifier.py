"""The verifier: is the presented card a genuine resident card? (issue 12 §4)

The card proves itself from its own data, as a real card does (RC §4.6), at any counter:

1. ``cv_chain``: card-info AP EF 0004 (free), a CV certificate whose issuer is a trust
   anchor (all 16 bytes of the key ID) and whose signature verifies under it. A card
   whose chain reaches no anchor is refused here, before any credential is presented.
2. ``credential``: VERIFY of the one credential given (PIN, 照合番号A or B).
3. ``signed_key``: EF 0007: DF52 verifies over the DF51 TLV under the EF 0004 holder key.
4. ``presence``: ``80 2A 00 00`` over DigestInfo(SHA-256(challenge)) with a fresh
   challenge from the token's RNG (redeemed once), verified under the DF51 key.

Where the chain starts at a ``station`` anchor the card is one of ours and, unless
``offline``, the registry checks follow: ``card_record`` (共通AP record: serial,
municipality, expiry as on record, not expired), ``certificate`` (our X.509 certificate
on record, issued by the token's issuing CA, and INTERNAL AUTHENTICATE ``00 88 00 99``
over a token challenge under it) and ``registry_status`` (active). The 共通AP work comes
first, so that the card-info AP is left selected with the credential verified: a read
that follows (``card read``) needs no second VERIFY.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cardlib.apps.card_info import CardInfoApSession
from cardlib.apps.common import CommonApSession
from cardlib.card_info_records import decode_signed_key
from cardlib.channel import ApduChannel
from cardlib.constants import CardInfoFile
from cardlib.cv_certificate import CvCertificate, decode_cv_certificate, verify_cv_chain
from cardlib.digestinfo import rsa_sha256_signature_verifies
from cardlib.errors import ApduError, CardDataError
from cardlib.records import CardInfoRecord
from hsm.ca import role_certificates
from hsm.chain import issuing_ca, within_validity
from hsm.roles import KeyRole
from hsm.token import Hsm
from hsm.verify import ChallengeBook

from ..registry import Registry
from ..station.pins import Pin
from ..station.trust import TrustStore
from .card_info import CREDENTIAL_KEYS
from .relying_party import RELYING_PARTY_CHECKS, OsRandom, RelyingParty

CREDENTIAL_NAMES = {"pin": "card-info PIN", "a": "照合番号A", "b": "照合番号B"}
CARD_CHECKS = ("applications", "cv_chain", "credential", "signed_key", "presence")
REGISTRY_CHECKS = ("card_record", "certificate", "registry_status")


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
    anchor: dict[str, str] | None = None  # the trust anchor the chain starts at
    chain: list[str] = field(default_factory=list)  # key IDs, anchor first, then DF51
    ours: bool = False
    offline: bool = False
    skipped: list[dict[str, str]] = field(default_factory=list)
    # ours, online: the card's current certificates as the registry has them (an expired
    # JPKI certificate is reported here, not as a failed check) and whether the card
    # itself is past its expiry (None: not looked up)
    certificates: list[dict[str, object]] = field(default_factory=list)
    card_expired: bool | None = None

    def as_json(self) -> dict[str, object]:
        return {"genuine": self.genuine, "card_serial": self.card_serial,
                "offline": self.offline, "ours": self.ours, "anchor": self.anchor,
                "chain": self.chain, "checks": [c.as_json() for c in self.checks],
                "skipped": self.skipped, "certificates": self.certificates,
                "card_expired": self.card_expired}


@dataclass
class _Run:
    """What one verification has found so far."""

    checks: list[Check] = field(default_factory=list)
    record: CardInfoRecord | None = None
    certificate: CvCertificate | None = None
    anchor: dict[str, str] | None = None
    chain: list[str] = field(default_factory=list)
    certificates: list[dict[str, object]] = field(default_factory=list)
    card_expired: bool | None = None
    relying_party: bool = False

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


class Verifier:
    def __init__(self, registry: Registry | None, challenges: ChallengeBook, trust: TrustStore,
                 ca_certs: list[x509.Certificate]) -> None:
        self.registry = registry
        self.challenges = challenges
        self.trust = trust
        self.ca_certs = ca_certs

    @classmethod
    def for_relying_party(cls, settings: dict[str, Any]) -> Verifier:
        """No token and no registry: the trust sets and extra anchors of ``settings``
        (the ``station`` set needs the token, so it is left out) and challenges from the
        operating system's CSPRNG; the JPKI certificate is checked against the relying
        party's CA certificates and CRLs (``verify(..., relying_party=...)``)."""
        return cls(None, ChallengeBook(OsRandom()),  # type: ignore[arg-type]
                   TrustStore.from_settings(settings, None), [])

    @classmethod
    def for_station(cls, registry: Registry, hsm: Hsm, settings: dict[str, Any],
                    trust: TrustStore | None = None) -> Verifier:
        """``trust``: the store the caller already built from ``settings`` and ``hsm``."""
        if trust is None:
            trust = TrustStore.from_settings(settings, hsm)
        return cls(registry, ChallengeBook(hsm), trust,
                   role_certificates(hsm, KeyRole.RESIDENT_ISSUING_CA))

    def verify(self, channel: ApduChannel, credential: tuple[str, Pin],
               offline: bool = False, relying_party: RelyingParty | None = None) -> Verdict:
        """The verdict on the card on ``channel``; presents ``credential`` (name in
        ``CREDENTIAL_KEYS``, value) once, and only to a card whose chain is anchored.
        A wrong credential raises ``InvalidPinError`` (the card is not judged). With
        ``relying_party`` (offline only), its JPKI certificate and CRL checks too."""
        run = _Run(relying_party=relying_party is not None)
        card_info = CardInfoApSession(channel)
        try:
            card_info.select()
        except ApduError as exc:
            run.add("applications", False, f"no card-info AP: {exc}")
            return self._verdict(run, offline, ours=False)
        run.add("applications", True, "card-info AP selected by AID")
        if not self._cv_chain(run, card_info):
            return self._verdict(run, offline, ours=False)
        ours = run.anchor is not None and run.anchor["source"] == "station"
        run.record = self._common_record(channel)
        if relying_party is not None:
            for name, ok, detail in relying_party.check(channel, self._serial(run)):
                run.add(name, ok, detail)
        if not ours and not offline and self._claims_a_station_serial(run):
            return self._verdict(run, offline, ours=False)  # before the credential
        if ours and not offline:
            self._registry_checks(run, channel)
        card_info.select()  # the credential comes last: it stays in force for a read
        name, secret = credential
        card_info.present(CREDENTIAL_KEYS[name], secret.reveal())
        run.add("credential", True, f"{CREDENTIAL_NAMES[name]} verified")
        key = self._signed_key(run, card_info)
        if key is not None:
            self._presence(run, card_info, key)
        return self._verdict(run, offline, ours)

    # ---- the card alone -------------------------------------------------------------

    def _cv_chain(self, run: _Run, card_info: CardInfoApSession) -> bool:
        try:
            certificate = decode_cv_certificate(
                card_info.read_tlv_file(CardInfoFile.CV_CERTIFICATE))
            verify_cv_chain([certificate], self.trust.anchors(), role="card-info")
        except (ApduError, CardDataError) as exc:
            return run.add("cv_chain", False, f"EF 0004: {exc}")
        info = self.trust.info(certificate.issuer.raw)
        assert info is not None  # verify_cv_chain found it
        run.certificate = certificate
        run.anchor = {"key_id": info.key_id, "hierarchy": info.hierarchy, "source": info.source}
        run.chain = [info.key_id, certificate.holder.text]
        return run.add("cv_chain", True, f"EF 0004 certifies {certificate.holder} under "
                                         f"{info.key_id} ({info.hierarchy} anchor)")

    def _signed_key(self, run: _Run, card_info: CardInfoApSession) -> rsa.RSAPublicKey | None:
        assert run.certificate is not None
        try:
            signed = decode_signed_key(card_info.read_tlv_file(CardInfoFile.SIGNED_KEY))
        except (ApduError, CardDataError) as exc:
            run.add("signed_key", False, f"EF 0007: {exc}")
            return None
        if not signed.verifies_under(run.certificate.public_key):
            run.add("signed_key", False, f"EF 0007 DF52 does not verify under "
                                         f"{run.certificate.holder}")
            return None
        run.chain.append("DF51 (EF 0007)")
        try:
            key = signed.public_key
        except CardDataError as exc:
            run.add("signed_key", False, str(exc))
            return None
        run.add("signed_key", True, f"EF 0007 DF52 verifies under {run.certificate.holder}")
        return key

    def _presence(self, run: _Run, card_info: CardInfoApSession, key: rsa.RSAPublicKey) -> None:
        challenge = self.challenges.issue()
        try:
            signature = card_info.presence_signature(challenge)
        except (ApduError, CardDataError) as exc:
            self.challenges.redeem(challenge)
            run.add("presence", False, f"80 2A 00 00 failed: {exc}")
            return
        if not self.challenges.redeem(challenge):
            run.add("presence", False, "challenge already used")
        elif not rsa_sha256_signature_verifies(key, signature, challenge):
            run.add("presence", False, "80 2A 00 00 signature over the token's challenge does "
                                       "not verify under DF51")
        else:
            run.add("presence", True, f"80 2A 00 00 signed a fresh {len(challenge)}-byte token "
                                      "challenge under DF51")

    # ---- ours: the registry -----------------------------------------------------------

    @staticmethod
    def _serial(run: _Run) -> str | None:
        return run.record.card_serial if run.record is not None else None

    @staticmethod
    def _common_record(channel: ApduChannel) -> CardInfoRecord | None:
        """The 共通AP record (free; unsigned, so only the registry checks rely on it)."""
        try:
            common = CommonApSession(channel)
            common.select()
            return common.read_card_info()
        except (ApduError, CardDataError):
            return None

    def _claims_a_station_serial(self, run: _Run) -> bool:
        """A card whose chain starts at a published or extra anchor but whose (unsigned)
        共通AP record names a card of this station's registry: every card this station
        issued chains to a ``station`` anchor, so the claim is false, and trusting it would
        record the provision against that card's resident."""
        serial = run.record.card_serial if run.record is not None else None
        if serial is None or self.registry is None or self.registry.get(serial) is None:
            return False
        assert run.anchor is not None
        run.add("card_record", False, f"claims serial {serial} of this station's registry, but "
                                      f"its chain starts at a {run.anchor['hierarchy']} anchor")
        return True

    def _registry_checks(self, run: _Run, channel: ApduChannel) -> None:
        record = run.record
        if record is None or self.registry is None:
            run.add("card_record", False, "no 共通AP card record to look up")
            return
        serial = record.card_serial
        entry = self.registry.get(serial)
        if entry is None or entry.certificate is None:
            state = "unknown to the registry" if entry is None else f"registry status {entry.status}"
            run.add("card_record", False, f"card {serial} {state}")
            return
        on_record = (entry.municipality_code, entry.expiry)
        on_card = (record.municipality_code, record.expiry.isoformat())
        expired = record.expiry < dt.datetime.now(dt.UTC).date()
        run.card_expired = expired
        run.certificates = certificate_report(self.registry, serial)
        if on_record != on_card:
            run.add("card_record", False, f"card says municipality/expiry {on_card}, "
                                          f"registry {on_record}")
        else:
            run.add("card_record", not expired, f"serial {serial}, municipality and expiry as on "
                    f"record; {'EXPIRED on' if expired else 'expiry'} {record.expiry}")
        certificate = x509.load_der_x509_certificate(entry.certificate)
        run.add("certificate", *self._certificate(certificate, serial, channel))
        reason = f" ({entry.status_reason})" if entry.status_reason else ""
        run.add("registry_status", entry.status == "active", f"registry status {entry.status}{reason}")

    def _certificate(self, certificate: x509.Certificate, serial: str,
                     channel: ApduChannel) -> tuple[bool, str]:
        subject_serial = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        ca = issuing_ca(certificate, self.ca_certs)
        key = certificate.public_key()
        if not within_validity(certificate):
            return False, "certificate outside its validity period"
        if not subject_serial or subject_serial[0].value != serial:
            return False, "certificate names another card"
        if ca is None or not isinstance(key, rsa.RSAPublicKey):
            return False, "not an RSA key issued by an issuing CA in the token"
        challenge = self.challenges.issue()
        try:
            signature = CommonApSession(channel).internal_authenticate(challenge)
        except (ApduError, CardDataError) as exc:
            self.challenges.redeem(challenge)
            return False, f"INTERNAL AUTHENTICATE 00 88 00 99 failed: {exc}"
        if not self.challenges.redeem(challenge):
            return False, "challenge already used"
        if not rsa_sha256_signature_verifies(key, signature, challenge):
            return False, "INTERNAL AUTHENTICATE over the token's challenge does not verify"
        name = str(ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
        return True, f"issued by {name}; key 0019 signed a fresh token challenge"

    # ---- the verdict --------------------------------------------------------------------

    def _verdict(self, run: _Run, offline: bool, ours: bool) -> Verdict:
        required = list(CARD_CHECKS) + (list(RELYING_PARTY_CHECKS) if run.relying_party else [])
        skipped = []
        if ours and not offline:
            required += REGISTRY_CHECKS
        else:
            reason = "offline" if offline else "not one of this station's cards"
            skipped = [{"name": name, "reason": reason} for name in REGISTRY_CHECKS]
        done = {c.name for c in run.checks}
        genuine = all(c.ok for c in run.checks) and done >= set(required)
        serial = run.record.card_serial if run.record is not None else None
        return Verdict(genuine, serial, run.checks, run.anchor, run.chain, ours, offline, skipped,
                       run.certificates, run.card_expired)


REPORTED_KINDS = ("card", "jpki-auth", "jpki-sign")


def certificate_report(registry: Registry, serial: str,
                       now: dt.datetime | None = None) -> list[dict[str, object]]:
    """The card's current certificate of each kind (the newest valid or on hold; else its
    newest of any status), each with its own expiry: a JPKI certificate past its
    not_after is ``expired`` while the card may still be valid, and the other way round."""
    moment = now or dt.datetime.now(dt.UTC)
    report: list[dict[str, object]] = []
    for kind in REPORTED_KINDS:
        record = registry.current_certificate(serial, kind)
        if record is None:
            older = [c for c in registry.certificates_of(card_serial=serial) if c.kind == kind]
            record = max(older, key=lambda c: c.issued_at) if older else None
        if record is None:
            continue
        not_after = dt.datetime.fromisoformat(record.not_after)
        if not_after.tzinfo is None:
            not_after = not_after.replace(tzinfo=dt.UTC)
        report.append({"kind": kind, "serial_number": record.serial_number,
                       "not_after": record.not_after, "status": record.status,
                       "expired": not_after < moment})
    return report
