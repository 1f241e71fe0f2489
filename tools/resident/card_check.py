"""`juki card check`: a diagnostic of a presented card (like myna's ``check``) or of a dump
(``--from DIR``, offline).

Live: per application, does it answer SELECT, which EFs are readable now (the status
word of each try), every key reference's retry counter by empty VERIFY (no try spent);
then the checks of the files read: the CV chains of MF ``00F8``/``7F21`` and of each
AP's EF ``0004`` to a trust anchor (named), the integrity record and the signed AP key
of the card-info AP under its EF ``0004`` key, the digests DF31/DF32 of what was read,
and whether the face photo is the placeholder. From a dump: the same checks of the
files, plus each file's SHA-256 against the index.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib import tlv
from cardlib.apdu import CommandApdu
from cardlib.apps.base import ApplicationSession, pin_status_of
from cardlib.card_info_records import decode_signed_key
from cardlib.channel import ApduChannel
from cardlib.constants import Ins
from cardlib.cv_certificate import CvCertificate, decode_cv_certificate, verify_cv_chain
from cardlib.errors import ApduError, CardDataError
from cardlib.integrity import decode_integrity_record
from cardlib.status import SW

from .card_dump import APPLICATIONS, ApSpec, CardDump, dump_card
from .card_info import Credential
from .card_surface_check import Finding, surface_checks
from .jpki import check_issued_by

Anchors = Mapping[bytes, rsa.RSAPublicKey]
DescribeAnchor = Callable[[bytes], str]


@dataclass(frozen=True)
class CheckReport:
    applications: dict[str, Any]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(f.ok is not False for f in self.findings)

    @property
    def failed(self) -> list[str]:
        return [f"{f.check}: {f.detail}" for f in self.findings if f.ok is False]

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "applications": self.applications,
                "findings": [f.as_json() for f in self.findings], "failed": self.failed}


# ---- the files: chains, signatures, digests ----------------------------------------------

def _chain(check: str, raws: list[bytes], anchors: Anchors, describe: DescribeAnchor,
           role: str) -> tuple[Finding, CvCertificate | None]:
    try:
        chain = [decode_cv_certificate(raw) for raw in raws]
        last = verify_cv_chain(chain, anchors, role)
    except CardDataError as exc:
        return Finding(check, False, str(exc)), None
    root = chain[0].issuer
    return Finding(check, True, f"chains to {root} ({describe(root.raw)}); holder "
                                f"{last.holder}"), last


def _chains(dump: CardDump, anchors: Anchors,
            describe: DescribeAnchor) -> tuple[list[Finding], CvCertificate | None]:
    findings: list[Finding] = []
    root, intermediate = dump.file("mf", "00F8"), dump.file("mf", "7F21")
    if root is None:
        findings.append(Finding("MF CV chain 00F8/7F21", None, "GET DATA 00F8 not read"))
    else:
        raws = [root.data] + ([intermediate.data] if intermediate else [])
        findings.append(_chain("MF CV chain 00F8/7F21", raws, anchors, describe, "mf")[0])
    signers: dict[str, CvCertificate] = {}
    for ap in ("card_info", "surface"):
        certificate = dump.file(ap, "0004")
        if certificate is None:
            findings.append(Finding(f"{ap} CV certificate (EF 0004)", None, "not read"))
            continue
        if not certificate.data.strip(b"\xff"):
            findings.append(Finding(f"{ap} CV certificate (EF 0004)", False,
                                    "empty (filler only): the AP was not personalised"))
            continue
        finding, last = _chain(f"{ap} CV certificate (EF 0004)", [certificate.data], anchors,
                               describe, "card-info" if ap == "card_info" else "surface")
        findings.append(finding)
        if last is not None:
            signers[ap] = last
    return findings, signers


def _integrity(dump: CardDump, signer: CvCertificate | None) -> list[Finding]:
    record_file = dump.file("card_info", "0003")
    if record_file is None:  # identity data without its record cannot be vouched for
        unchecked = [Finding(f"card_info {name} (EF {fid})", False,
                             "no integrity record (EF 0003) to check it against")
                     for fid, name in (("0001", "DF31"), ("0002", "DF32"))
                     if dump.file("card_info", fid) is not None]
        return unchecked or [Finding("card_info integrity record (EF 0003)", None,
                                     "not read (needs a credential)")]
    try:
        record = decode_integrity_record(record_file.data)
    except CardDataError as exc:
        return [Finding("card_info integrity record (EF 0003)", False, str(exc))]
    if signer is None:
        signature = Finding("card_info integrity record DF33", False,
                            "no verified EF 0004 key to check it under")
    elif record.verifies_under(signer.public_key):
        signature = Finding("card_info integrity record DF33", True,
                            f"verifies under {signer.holder}")
    else:
        signature = Finding("card_info integrity record DF33", False,
                            f"does not verify under the EF 0004 key {signer.holder}")
    findings = [signature]
    for fid, digest_name in (("0001", "DF31"), ("0002", "DF32")):
        dumped = dump.file("card_info", fid)
        check = f"card_info {digest_name} (EF {fid})"
        if dumped is None:
            findings.append(Finding(check, None, "file not read"))
            continue
        try:
            mismatches = record.mismatches(dumped.data if fid == "0001" else None,
                                           dumped.data if fid == "0002" else None)
        except CardDataError as exc:
            mismatches = [str(exc)]
        findings.append(Finding(check, not mismatches,
                                "; ".join(mismatches) or f"SHA-256 of EF {fid} matches"))
    return findings


def verify_files(dump: CardDump, anchors: Anchors, describe: DescribeAnchor) -> list[Finding]:
    """Every check the files of ``dump`` allow; nothing here talks to a card."""
    findings, signers = _chains(dump, anchors, describe)
    findings += _integrity(dump, signers.get("card_info"))
    findings += _signed_key(dump, signers.get("card_info"))
    findings += surface_checks(dump, signers.get("surface"))
    findings += _jpki_chains(dump)
    return findings


def _der(raw: bytes) -> x509.Certificate:
    """A DER certificate from a physical file (the object, then filler)."""
    return x509.load_der_x509_certificate(raw[: tlv.header_length(raw)])


def _jpki_chains(dump: CardDump) -> list[Finding]:
    """JPKI auth certificate (000A) under its CA (000B), sign (0001) under 0002."""
    findings = []
    for name, cert_fid, ca_fid in (("auth", "000A", "000B"), ("sign", "0001", "0002")):
        check = f"jpki {name} certificate (EF {cert_fid}) under EF {ca_fid}"
        cert_file, ca_file = dump.file("jpki", cert_fid), dump.file("jpki", ca_fid)
        if cert_file is None or ca_file is None:
            findings.append(Finding(check, None, "not read"))
            continue
        if not cert_file.data.strip(b"\xff") or not ca_file.data.strip(b"\xff"):
            findings.append(Finding(check, False, "empty (filler only): not personalised"))
            continue
        try:
            ok, detail = check_issued_by(_der(cert_file.data), _der(ca_file.data))
        except (CardDataError, ValueError) as exc:
            ok, detail = False, f"not a DER certificate ({exc})"
        findings.append(Finding(check, ok, detail))
    return findings


def _signed_key(dump: CardDump, signer: CvCertificate | None) -> list[Finding]:
    """The signed AP key (EF 0007) under the EF 0004 key."""
    check = "card_info signed AP key (EF 0007)"
    signed = dump.file("card_info", "0007")
    if signed is None:
        return [Finding(check, None, "not read (needs a credential)")]
    try:
        key = decode_signed_key(signed.data)
    except CardDataError as exc:
        return [Finding(check, False, str(exc))]
    if signer is None:
        return [Finding(check, False, "no verified EF 0004 key to check DF52 under")]
    if not key.verifies_under(signer.public_key):
        return [Finding(check, False, f"DF52 does not verify under {signer.holder}")]
    return [Finding(check, True, f"DF52 verifies under {signer.holder}")]


def check_digests(dump: CardDump, digests: Mapping[str, str]) -> list[Finding]:
    """Each dumped file against the SHA-256 its index gives (a changed file is named)."""
    changed = [f.path for f in dump.files if not hmac.compare_digest(
        hashlib.sha256(f.data).hexdigest(), digests.get(f.path, ""))]
    return [Finding("dump files against index.json", not changed,
                    f"changed: {', '.join(changed)}" if changed else
                    f"{len(dump.files)} files as indexed")]


# ---- the live card: what answers, what is readable, retry counters --------------------

def _try(session: ApplicationSession, apdu: CommandApdu) -> str:
    _, sw = session.channel.transceive(apdu)
    return f"{sw:04X}"


def _probe_application(channel: ApduChannel, spec: ApSpec) -> dict[str, Any]:
    session = ApplicationSession(channel, spec.aid)
    try:
        session.select()
    except ApduError as exc:
        return {"select": f"{exc.sw:04X}"}
    files: dict[str, Any] = {}
    for fid in spec.files + spec.records:
        select_sw = _try(session, CommandApdu(0x00, Ins.SELECT, 0x02, 0x0C, fid.to_bytes(2, "big")))
        if select_sw != "9000":
            files[f"{fid:04X}"] = {"select": select_sw, "readable": False}
            continue
        read = (CommandApdu(0x00, Ins.READ_RECORD, 1, 0x04, ne=256) if fid in spec.records
                else CommandApdu(0x00, Ins.READ_BINARY, 0, 0, ne=1))
        read_sw = _try(session, read)
        files[f"{fid:04X}"] = {"read": read_sw, "readable": read_sw == "9000"}
    keys: dict[str, Any] = {}
    for fid in spec.keys:
        try:
            session.select_ef(fid)
            _, sw = channel.transceive(CommandApdu(0x00, Ins.VERIFY, 0x00, 0x80))
            keys[f"{fid:04X}"] = pin_status_of(sw).as_json() | {"sw": f"{sw:04X}"}
        except ApduError as exc:
            keys[f"{fid:04X}"] = {"sw": f"{exc.sw:04X}"}
    return {"select": f"{SW.OK:04X}", "files": files, "keys": keys}


def check_card(channel: ApduChannel, anchors: Anchors, describe: DescribeAnchor,
               credential: Credential | None = None) -> tuple[CheckReport, CardDump]:
    """Probe every application (no try spent), then read what is readable (after
    ``credential`` if given) and check it. The dump is returned for the caller to
    discard; nothing of it is in the report but digests' verdicts."""
    applications = {spec.name: _probe_application(channel, spec) for spec in APPLICATIONS}
    dump = dump_card(channel, credential, anchors)  # a credential only to anchored APs
    return CheckReport(applications, tuple(verify_files(dump, anchors, describe))), dump


def check_dump(dump: CardDump, digests: Mapping[str, str], anchors: Anchors,
               describe: DescribeAnchor) -> CheckReport:
    """``card check --from DIR``: the dump's files against its index, then every check."""
    findings = check_digests(dump, digests) + verify_files(dump, anchors, describe)
    files = {ap: sorted(f.name for f in dump.files if f.ap == ap)
             for ap in ("mf", *(spec.name for spec in APPLICATIONS))}
    return CheckReport({"dumped": files, "credential": dump.credential}, tuple(findings))
