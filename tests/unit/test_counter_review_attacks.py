"""Security review of issue 13: attacks on the counter work that the parts' own tests did
not try. Each test is the regression test of a hole found (and fixed), or an attack
that is refused and adds coverage."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hsm.roles import KeyRole
from tools.pki import crl as crl_module
from tools.registry import Registry

from .test_registry_certificates import issue

CA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Juki Resident Signature CA")])


def _ca_certificate() -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return (x509.CertificateBuilder().subject_name(CA_NAME).issuer_name(CA_NAME)
            .public_key(CA_KEY.public_key()).serial_number(1)
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(CA_KEY, hashes.SHA256()))


@pytest.fixture
def local_ca(monkeypatch: pytest.MonkeyPatch) -> x509.Certificate:
    """build_crl with its CA key in memory instead of the token."""
    ca = _ca_certificate()
    monkeypatch.setattr(crl_module, "certificates_by_version", lambda hsm, role: {1: ca})
    monkeypatch.setattr(crl_module, "TokenRsaSigner", lambda hsm, role, version: CA_KEY)
    return ca


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_a_higher_crl_number_never_lists_less(registry: Registry, local_ca,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stations publish at once while a certificate is revoked. Station A's build_crl
    read what to list, then station B revoked the signature certificate and published
    (its CRL lists it), then A took its number. Were A's list read outside the
    transaction of its number, A's CRL would carry the HIGHER number without the
    revoked certificate, and a relying party (which takes the newest CRL) would accept
    it. The list and the number are one snapshot under the registry's write lock."""
    serial = "A0000000000000000001"
    sign = issue(registry, serial)[2]
    published: list[x509.CertificateRevocationList] = []
    hooked = {"done": False}

    def station_b() -> None:
        with registry.transaction() as db:
            registry.revoke_certificates(db, reason="four-info-changed", card_serial=serial,
                                         kinds=("jpki-sign",))
        published.append(crl_module.build_crl(None, registry, KeyRole.RESIDENT_SIGN_CA, 1,  # type: ignore[arg-type]
                                              dt.timedelta(hours=1)))

    for name in ("revoked_under", "next_crl_number", "crl_snapshot"):
        original = getattr(registry, name, None)
        if original is None:
            continue

        def hooked_call(*args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            result = _original(*args, **kwargs)
            if not hooked["done"]:  # station B runs between A's first read and the rest
                hooked["done"] = True
                station_b()
            return result

        monkeypatch.setattr(registry, name, hooked_call)
    a = crl_module.build_crl(None, registry, KeyRole.RESIDENT_SIGN_CA, 1,  # type: ignore[arg-type]
                             dt.timedelta(hours=1))
    b = published[0]
    newest = max((a, b), key=_number)
    assert _number(a) != _number(b)
    assert newest.get_revoked_certificate_by_serial_number(
        sign.certificate.serial_number) is not None, "the newest CRL omits a revoked certificate"


# ---- the card: forms of the counter commands the allow-list must not let through ---------

from cardlib.apdu import CommandApdu  # noqa: E402
from cardlib.errors import CardError  # noqa: E402

from .counter_card_fixtures import (  # noqa: E402
    AIDS,
    changed,
    counter,
    fresh,
    issued_counter_text,
    select,
    send,
    snapshot,
)

__all__ = ["issued_counter_text"]

# Inside the counter session, (AP, EF selected first, command): each must change nothing.
SESSION_ATTACKS = [
    # UPDATE/ERASE BINARY by SFI: P1 80|sfi names an EF the selected one does not (EF 0001
    # = the individual number, 0007 = the signed AP key), with a listed EF current.
    ("info", 0x0002, CommandApdu(0x00, 0xD6, 0x81, 0x00, b"999999999999")),
    ("info", 0x0002, CommandApdu(0x00, 0xD6, 0x87, 0x00, b"\x00")),
    ("info", 0x0002, CommandApdu(0x00, 0x0E, 0x81, 0x00)),
    ("jpki", 0x000A, CommandApdu(0x00, 0xD6, 0x88, 0x00, b"\x00")),
    # RESET RETRY COUNTER: P2 80|fid names another PIN than the (listed) current one:
    # 0012 (blocked for good), 0013/0014 照合番号A/B.
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x02, 0x92, b"1234")),
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x02, 0x93, b"123456789012")),
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x02, 0x94, b"12345678901234")),
    # RESET RETRY COUNTER with another P1 (00 = with a reset code, 01, 03)
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x00, 0x80, b"12341234")),
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x01, 0x80, b"1234")),
    ("info", 0x0011, CommandApdu(0x00, 0x2C, 0x03, 0x80)),
    # GENERATE KEY with another P1 (the JPKI's two keys are both listed); in the
    # card-info AP by 80|fid while nothing listed is current (its AP key 0016)
    ("jpki", 0x001A, CommandApdu(0x00, 0x46, 0x01, 0x80, b"", 256)),
    ("info", 0x0002, CommandApdu(0x00, 0x46, 0x00, 0x96, b"", 256)),
    # UPDATE RECORD of record 1 by SFI, of record 2, with P2 "last"/"next" modes
    ("common", 0x0001, CommandApdu(0x00, 0xDC, 0x01, 0x0C, bytes(16))),
    ("common", 0x0001, CommandApdu(0x00, 0xDC, 0x00, 0x02, bytes(16))),
    ("common", 0x0001, CommandApdu(0x00, 0xDC, 0x01, 0x03, bytes(16))),
    # a listed EF, but past its end: extended length beyond the EF, an offset past it
    ("info", 0x0002, CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(5000))),
    ("info", 0x0002, CommandApdu(0x00, 0x0E, 0x7F, 0xFF)),
    # a logical channel (CLA 01..03) on a listed target
    ("info", 0x0002, CommandApdu(0x01, 0xD6, 0x00, 0x00, b"\x00")),
    ("info", 0x0011, CommandApdu(0x03, 0x2C, 0x02, 0x80, b"1234")),
    # the proprietary class on a listed target
    ("info", 0x0002, CommandApdu(0x80, 0xD6, 0x00, 0x00, b"\x00")),
]


@pytest.mark.parametrize(("ap", "fid", "command"), SESSION_ATTACKS,
                         ids=[f"{a}-{f:04X}-{c.cla:02X}{c.ins:02X}{c.p1:02X}{c.p2:02X}"
                              for a, f, c in SESSION_ATTACKS])
def test_forms_of_the_counter_commands_outside_the_allow_list_change_nothing(
        issued_counter_text: str, ap: str, fid: int, command: CommandApdu) -> None:
    card, plain = fresh(issued_counter_text)
    secure, before = counter(plain), snapshot(card)
    select(secure, ap, fid)
    try:
        _data, sw = secure.transceive(command)
    except CardError:  # the host refused to wrap it, or the session broke: nothing written
        sw = None
    assert sw != 0x9000
    assert changed(before, card) == set()


def test_a_partial_aid_select_then_writes_without_the_session(issued_counter_text: str) -> None:
    """SELECT by a prefix of the JPKI AID (JICSAP 4.2), then every write in the clear:
    6982, nothing changed; in a logical channel: 6881."""
    card, plain = fresh(issued_counter_text)
    before = snapshot(card)
    prefix = AIDS["jpki"][:6]
    assert send(plain, 0x00, 0xA4, 0x04, 0x0C, prefix)[1] == 0x9000
    assert send(plain, 0x00, 0xA4, 0x02, 0x0C, b"\x00\x0A")[1] == 0x9000
    assert send(plain, 0x00, 0x0E, 0x00, 0x00)[1] == 0x6982
    assert send(plain, 0x00, 0xD6, 0x00, 0x00, b"\x00")[1] == 0x6982
    assert send(plain, 0x00, 0xD6, 0x81, 0x00, b"\x00")[1] == 0x6982
    assert send(plain, 0x00, 0x46, 0x00, 0x9A, b"", 256)[1] == 0x6982
    assert send(plain, 0x00, 0xA4, 0x02, 0x0C, b"\x00\x1B")[1] == 0x9000
    assert send(plain, 0x00, 0x2C, 0x02, 0x80, b"5555")[1] == 0x6982
    assert send(plain, 0x01, 0x2C, 0x02, 0x80, b"5555")[1] == 0x6881
    assert changed(before, card) == set()


# ---- moves: the dates of a move-out ----------------------------------------------------------

from tools.counter.moves import move_out  # noqa: E402
from tools.errors import RequestError  # noqa: E402
from tools.registry import new_record_code  # noqa: E402

MOVE_TODAY = dt.date(2026, 5, 1)


def _resident_with_a_card(registry: Registry) -> str:
    code = new_record_code()
    registry.begin_issuance("100000000000077", "resident", code, "131016", dt.date(2036, 1, 1))
    registry.complete_issuance("100000000000077", b"cert", identity={
        "name": "山田 太郎", "name_kana": None, "birth_date": "1985-04-12", "sex": "1",
        "address": "東京都千代田区千代田1-1"})
    return code


@pytest.mark.parametrize(("ahead", "settings"), [(15, {}), (3650 * 7, {}),
                                                  (8, {"counter": {"move_out_advance_days": 7}})])
def test_a_move_out_planned_far_ahead_is_refused(registry: Registry, ahead: int,
                                                 settings: dict) -> None:
    """Hole (fixed): a move-out took any planned date, so one dated years ahead kept the
    move open (blocking every other move of the resident) and the move-in's rule
    "within 30 days of the planned date" could never bite. Refused by name, nothing
    recorded."""
    code = _resident_with_a_card(registry)
    with pytest.raises(RequestError, match="move_out_advance_days"):
        move_out(registry, settings, code, "011002", MOVE_TODAY + dt.timedelta(days=ahead),
                 "転勤", today=MOVE_TODAY)
    assert registry.moves_of(registry.resident_of_code(code)[0]) == []  # type: ignore[index]


def test_a_move_out_at_the_limit_is_recorded(registry: Registry) -> None:
    code = _resident_with_a_card(registry)
    move = move_out(registry, {}, code, "011002", MOVE_TODAY + dt.timedelta(days=14), "転勤",
                    today=MOVE_TODAY)
    assert (move.status, move.planned_date) == ("planned", "2026-05-15")


# ---- the relying party: CRLs it must not take as complete --------------------------------------

from tests.unit.test_relying_party import (  # noqa: E402
    CA_KEY as RP_CA_KEY,
)
from tests.unit.test_relying_party import (  # noqa: E402
    NOW,
    OTHER_KEY,
    checks,
    make_crl,
    party,
)
from tests.unit.test_relying_party import (  # noqa: E402
    name as rp_name,
)


def _crl_with(extension: x509.ExtensionType, critical: bool, number: int = 5,
              issuer: x509.Name | None = None, key=RP_CA_KEY) -> x509.CertificateRevocationList:  # type: ignore[no-untyped-def]
    return (x509.CertificateRevocationListBuilder()
            .issuer_name(issuer or rp_name("Test Auth CA"))
            .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(hours=1))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(extension, critical=critical)
            .sign(key, hashes.SHA256()))


PARTIAL_CRLS = {
    # a delta CRL (RFC 5280 5.2.4) lists only what changed since its base: as the newest
    # CRL it would hide a certificate revoked before the base
    "delta": _crl_with(x509.DeltaCRLIndicator(1), critical=True),
    # an indirect CRL, a CRL of some reasons only, a CRL of CA certificates only: none of
    # them is the complete list of the CA's revoked end-entity certificates
    "indirect": _crl_with(x509.IssuingDistributionPoint(
        None, None, False, False, None, True, False), critical=True),
    "some-reasons": _crl_with(x509.IssuingDistributionPoint(
        None, None, False, False, frozenset({x509.ReasonFlags.key_compromise}), False, False),
        critical=True),
    "ca-only": _crl_with(x509.IssuingDistributionPoint(
        None, None, False, True, None, False, False), critical=True),
    # an extension the relying party does not understand, marked critical (RFC 5280 5.2)
    "unknown-critical": _crl_with(x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), critical=True),
}


@pytest.mark.parametrize("kind", sorted(PARTIAL_CRLS))
def test_a_partial_or_not_understood_crl_is_not_taken_as_complete(kind: str) -> None:
    """Beside the current complete CRL (number 1, listing the certificate), a CRL of the
    same CA with a higher number that is a delta, indirect or partitioned CRL, or has a
    critical extension not understood: refused, naming it, rather than letting it
    decide (it does not list the revoked certificate)."""
    revoked = make_crl(revoked={0xABCDEF: x509.ReasonFlags.key_compromise}, number=1)
    ok, detail = checks(party(revoked, PARTIAL_CRLS[kind]))["crl"]
    assert not ok
    assert "revoked" in detail or "crl1" in detail


def test_a_revoked_serial_of_another_ca_does_not_refuse(kind: str = "other-ca") -> None:
    """The same serial number revoked by another CA (another name, another key) is not
    this certificate: only a CRL of its own issuer counts."""
    other = (x509.CertificateRevocationListBuilder().issuer_name(rp_name("Other CA"))
             .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(hours=1))
             .add_extension(x509.CRLNumber(9), critical=False)
             .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(0xABCDEF)
                                      .revocation_date(NOW - dt.timedelta(hours=1)).build())
             .sign(OTHER_KEY, hashes.SHA256()))
    ok, detail = checks(party(make_crl(number=1), other))["crl"]
    assert ok and "not listed" in detail
