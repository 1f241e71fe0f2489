"""Issue 13's counter operations end to end through pcscd, vpcd and SoftHSM (SQLite, and
PostgreSQL in the JUKI_DB pass), on a station of its own: a name change on marriage
(card, integrity record, signature certificate, CRL, 操作履歴), a move notified without
the card and the card's continued use, a move-in without a new signature certificate,
the resident's 付随情報 (operator mode: test_counter_e2e_operators)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from cardlib.apps.common import CommonApSession
from tools.rig.rig import reader_name
from tools.station.readers import open_card

from ..conftest import juki
from ..operator_helpers import (
    operator_station,
    station_registry,
)
from .rig_cards import issue_own_yamada_card

PIN, AUTH_PIN = "6274", "2468"  # issue_own_yamada_card: jpki_auth=2468, jpki_sign=SIGN2026
READER0, READER1 = reader_name(0), reader_name(1)
TODAY = dt.date.today()
NENKIN = ("--recipient", "NENKIN", "--purpose", "B1-57")
NAME_OID, ADDRESS_OID = "1.2.392.200149.8.5.5.1", "1.2.392.200149.8.5.5.5"
PLACES = {"131016": "東京都千代田区霞が関二丁目1番2号", "011002": "北海道札幌市中央区北1条西2丁目",
          "141011": "神奈川県横浜市中区日本大通1"}


@pytest.fixture(scope="module")
def desk(rig_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A station of its own (open mode) with Yamada's card issued in slot 0."""
    root = tmp_path_factory.mktemp("counter-e2e")
    home = operator_station(rig_home, root / "station")
    card = issue_own_yamada_card(home, root, root / "card.json", PIN, rig_home=rig_home)
    registry = station_registry(home)
    code = registry.get(card["serial"]).resident_code
    return {"home": home, "rig": rig_home, "root": root, "state": root / "card.json",
            "pins": root / "pins.txt", "code": code, **card}


def insert(desk: dict, slot: int = 0) -> None:
    juki(desk["rig"], "rig", "insert", "--slot", str(slot), "--state", str(desk["state"]))


def read_card(home: Path, reader: str = READER0) -> dict:
    return json.loads(juki(home, "card", "read", "--with", "pin", *NENKIN, "--reader", reader,
                           "--json", input=f"{PIN}\n").stdout)


def verify(home: Path, reader: str = READER0) -> dict:
    return json.loads(juki(home, "verify", "--reader", reader, "--json",
                           input=f"{PIN}\n").stdout)


def card_certificates(desk: dict, out: Path) -> dict[str, x509.Certificate]:
    """`juki card certs --with-sign --out`: what the card holds (auth, sign, their CAs)."""
    juki(desk["home"], "card", "certs", "--with-sign", "--out", str(out), "--reader", READER0,
         "--pin-file", str(desk["pins"]))
    return {name: x509.load_pem_x509_certificate((out / f"{name}.pem").read_bytes())
            for name in ("auth", "auth-ca", "sign", "sign-ca")}


def other_name(certificate: x509.Certificate, oid: str) -> str:
    """The UTF8String of a subjectAltName otherName."""
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    der = next(n.value for n in names.get_values_for_type(x509.OtherName)
               if n.type_id.dotted_string == oid)
    assert der[0] == 0x0C, der.hex()  # UTF8String
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(der[2:2 + count], "big"), 2 + count
    return der[offset:offset + length].decode("utf-8")


def published(home: Path, out: Path) -> Path:
    juki(home, "crl", "publish", "--out", str(out), "--json")
    return out


def crl_reason(out: Path, registry, serial_number: str) -> x509.ReasonFlags | None:  # type: ignore[no-untyped-def]
    """The reason a freshly published CRL of the certificate's CA gives, None if unlisted."""
    record = registry.certificate(serial_number)
    crl = x509.load_der_x509_crl(
        (out / f"{record.issuer_role}-v{record.issuer_version}.crl").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(int(serial_number, 16))
    if entry is None:
        return None
    return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason


def events_of(home: Path, serial: str, name: str) -> list[dict]:
    rows = station_registry(home).connection().execute(
        "SELECT entry FROM provision_log WHERE kind = 'event' ORDER BY idx").fetchall()
    return [e for e in (json.loads(r[0]) for r in rows)
            if e["event"] == name and e.get("card_serial") == serial]


def snapshot(home: Path, serial: str) -> tuple:
    """What a refused operation must leave as it was: the identity, the card's row, its
    certificates and its journal."""
    registry = station_registry(home)
    card = registry.get(serial)
    certificates = sorted((c.serial_number, c.status, c.reason)
                          for c in registry.certificates_of(card_serial=serial))
    operations = registry.connection().execute(
        "SELECT id, status FROM card_operations WHERE card_serial = ? ORDER BY id",
        (serial,)).fetchall()
    return (registry.identity_of(card.resident_id), card.status, card.municipality_code,
            certificates, [tuple(r) for r in operations])


def common_record(reader: str = READER0):  # type: ignore[no-untyped-def]
    """The 共通AP record 1 (free): serial, municipality, expiry."""
    with open_card(reader) as channel:
        common = CommonApSession(channel)
        common.select()
        return common.read_card_info()


def move(desk: dict, to: str, *extra: str, reason: str = "転勤") -> dict:
    """Move-out to ``to`` and move-in there with the card: the move-in's JSON."""
    juki(desk["home"], "resident", "move-out", "--code", desk["code"], "--to", to, "--date",
         TODAY.isoformat(), "--reason", reason, "--json")
    return json.loads(juki(desk["home"], "resident", "move-in", "--address", PLACES[to],
                           "--municipality", to, "--date", TODAY.isoformat(), *extra,
                           "--reader", READER0, "--json", input=f"{PIN}\n").stdout)


def elsewhere(desk: dict) -> str:
    here = station_registry(desk["home"]).get(desk["serial"]).municipality_code
    return next(m for m in PLACES if m != here)


# ---- 1. a name change on marriage ---------------------------------------------------------

def test_a_name_change_rewrites_the_card_and_reissues_the_signature_certificate(
        desk: dict) -> None:
    home, serial = desk["home"], desk["serial"]
    insert(desk)
    registry = station_registry(home)
    old_name = registry.identity_of(registry.get(serial).resident_id)["name"]
    old_sign = registry.current_certificate(serial, "jpki-sign").serial_number
    before = card_certificates(desk, desk["root"] / "certs-before")
    assert f"{before['sign'].serial_number:x}" == old_sign
    assert other_name(before["sign"], NAME_OID) == old_name
    new_name = "佐藤　太郎"

    changed = json.loads(juki(home, "resident", "change", "--field", "name", "--value",
                              new_name, "--reason", "婚姻", "--date", TODAY.isoformat(),
                              "--reader", READER0, "--json", input=f"{PIN}\n").stdout)
    assert (changed["kind"], changed["card_serial"], changed["fields"], changed["date"]) == (
        "change", serial, ["name"], TODAY.isoformat())
    assert changed["revoked_certificates"] == [old_sign] and changed["signature_certificate"]
    assert new_name not in json.dumps(changed, ensure_ascii=False)

    read = read_card(home)  # released only once the re-signed integrity record verifies
    assert read["name"] == new_name and read["address"] == PLACES["131016"]
    assert read["integrity"]["signature_ok"] and read["integrity"]["digests_ok"]
    assert verify(home)["genuine"]

    registry = station_registry(home)
    old = registry.certificate(old_sign)
    assert (old.status, old.reason) == ("revoked", "four-info-changed")
    crls = published(home, desk["root"] / "crls-change")
    assert crl_reason(crls, registry, old_sign) == x509.ReasonFlags.affiliation_changed
    assert crl_reason(crls, registry, changed["signature_certificate"]) is None

    after = card_certificates(desk, desk["root"] / "certs-after")
    assert f"{after['sign'].serial_number:x}" == changed["signature_certificate"]
    assert registry.current_certificate(serial, "jpki-sign").serial_number == \
        changed["signature_certificate"]
    assert other_name(after["sign"], NAME_OID) == new_name
    assert after["sign"].public_key().public_numbers() != before["sign"].public_key() \
        .public_numbers()  # a new key, generated on the card
    assert after["auth"] == before["auth"]  # the authentication certificate stays
    after["sign"].verify_directly_issued_by(after["sign-ca"])

    events = events_of(home, serial, "four-info-changed")
    assert [(e["reason"], e["detail"]["fields"], e["detail"]["date"]) for e in events] == [
        ("婚姻", "name", TODAY.isoformat())]
    assert not [e for e in events
                if new_name in json.dumps(e, ensure_ascii=False)
                or old_name in json.dumps(e, ensure_ascii=False)]


def test_a_birth_date_change_and_a_suspended_card_are_refused(desk: dict) -> None:
    home, serial = desk["home"], desk["serial"]
    insert(desk)
    before = snapshot(home, serial)
    card_before = common_record()
    refused = juki(home, "resident", "change", "--field", "birth-date", "--value", "1985-04-13",
                   "--reason", "訂正", "--date", TODAY.isoformat(), "--reader", READER0,
                   "--json", input=f"{PIN}\n", check=2)
    assert "birth-date change needs a new card" in refused.stdout + refused.stderr
    assert snapshot(home, serial) == before
    current = station_registry(home).identity_of(station_registry(home).get(serial).resident_id)
    refused = juki(home, "resident", "change", "--field", "address", "--value",
                   str(current["address"]), "--reason", "訂正", "--date", TODAY.isoformat(),
                   "--reader", READER0, input=f"{PIN}\n", check=2)
    assert "already that value: nothing was changed" in refused.stderr
    assert snapshot(home, serial) == before  # no rewrite, no revocation, no journal entry

    juki(home, "card", "suspend", serial, "--reason", "調査中")
    try:
        suspended = snapshot(home, serial)
        refused = juki(home, "resident", "change", "--field", "address", "--value",
                       PLACES["141011"], "--reason", "訂正", "--date", TODAY.isoformat(),
                       "--reader", READER0, input=f"{PIN}\n", check=2)
        assert f"card {serial} is suspended" in refused.stderr
        assert snapshot(home, serial) == suspended
    finally:
        juki(home, "card", "resume", serial, "--reason", "本人確認済")
    assert common_record() == card_before
    assert snapshot(home, serial)[0] == before[0]
    assert verify(home)["genuine"]


# ---- 2. a move notified without the card, then its continued use --------------------------

def test_card_later_then_continue_card_and_a_move_in_without_a_signature_certificate(
        desk: dict) -> None:
    home, serial, code = desk["home"], desk["serial"], desk["code"]
    insert(desk)
    start = station_registry(home).get(serial).municipality_code
    there = elsewhere(desk)
    juki(home, "resident", "move-out", "--code", code, "--to", there, "--date",
         TODAY.isoformat(), "--reason", "転勤", "--json")
    notified = json.loads(juki(home, "resident", "move-in", "--address", PLACES[there],
                               "--municipality", there, "--date", TODAY.isoformat(),
                               "--card-later", "--code", code, "--json").stdout)
    assert notified["status"] == "moved-in"
    assert common_record().municipality_code == start  # the card is not touched yet

    continued = json.loads(juki(home, "resident", "continue-card", "--reader", READER0,
                                "--json", input=f"{PIN}\n").stdout)
    assert (continued["kind"], continued["card_serial"], continued["move"]) == (
        "continue-card", serial, notified["id"])
    assert continued["municipality"] == {"from": start, "to": there}
    assert common_record().municipality_code == there
    assert read_card(home)["address"] == PLACES[there]
    assert verify(home)["genuine"]
    moves = json.loads(juki(home, "resident", "moves", "--code", code, "--json").stdout)
    assert next(m for m in moves if m["id"] == notified["id"])["status"] == "completed"
    assert [e["detail"]["move"] for e in events_of(home, serial, "card-continued")] == [
        notified["id"]]
    sign = continued["signature_certificate"]
    assert sign and station_registry(home).current_certificate(serial, "jpki-sign") \
        .serial_number == sign
    new_sign = card_certificates(desk, desk["root"] / "certs-continued")["sign"]
    assert f"{new_sign.serial_number:x}" == sign  # carrying the new address
    assert other_name(new_sign, ADDRESS_OID) == PLACES[there]

    # moving on without a new signature certificate: the old one revoked, none issued
    onward = elsewhere(desk)
    moved = move(desk, onward, "--no-signature-certificate")
    assert moved["revoked_certificates"] == [sign] and moved["signature_certificate"] is None
    assert common_record().municipality_code == onward
    registry = station_registry(home)
    assert registry.current_certificate(serial, "jpki-sign") is None
    assert (registry.certificate(sign).status, registry.certificate(sign).reason) == (
        "revoked", "four-info-changed")
    on_card = card_certificates(desk, desk["root"] / "certs-no-sign")["sign"]
    assert f"{on_card.serial_number:x}" == sign  # EF 0001 still holds it ...
    crls = published(home, desk["root"] / "crls-no-sign")
    assert crl_reason(crls, registry, sign) == x509.ReasonFlags.affiliation_changed  # listed
    assert verify(home)["genuine"]


# ---- 3. 付随情報 --------------------------------------------------------------------------

def test_incidental_information_lists_moves_and_changes_proven_without_values(
        desk: dict) -> None:
    home, serial, code = desk["home"], desk["serial"], desk["code"]
    insert(desk)
    registry = station_registry(home)
    start = registry.get(serial).municipality_code
    there = elsewhere(desk)
    moved = move(desk, there, reason="住宅購入")
    juki(home, "resident", "change", "--field", "name", "--value", "鈴木　太郎", "--reason",
         "養子縁組", "--date", TODAY.isoformat(), "--reader", READER0, "--json",
         input=f"{PIN}\n")
    own = json.loads(juki(home, "audit", "self", "--code", code, "--reader", READER0, "--json",
                          input=f"{AUTH_PIN}\n").stdout)
    assert own["checkpoint"]["signature_ok"]
    incidental = own["incidental_information"]
    assert all(i["proof_verified"] and i["inclusion_proof"] is not None for i in incidental)
    mine = [(i["event"], i["reason"], i["detail"].get("date")) for i in incidental
            if i["detail"].get("move") == moved["move"] or (
                i["event"] == "four-info-changed" and i["reason"] == "養子縁組")]
    assert mine == [("move-out", "住宅購入", TODAY.isoformat()),
                    ("move-in", "住宅購入", TODAY.isoformat()),
                    ("four-info-changed", "養子縁組", TODAY.isoformat())], incidental
    move_in = next(i for i in incidental if i["event"] == "move-in"
                   and i["detail"].get("move") == moved["move"])
    assert (move_in["detail"]["from"], move_in["detail"]["to"]) == (start, there)
    assert all(i["date"] == i["time_local"][:10] for i in incidental)
    # every earlier change of this module's card is there too, each proven
    assert {"move-out", "move-in", "card-continued", "four-info-changed"} <= {
        i["event"] for i in incidental}
    text = json.dumps(incidental, ensure_ascii=False)
    identity = registry.identity_of(registry.get(serial).resident_id)
    for value in (*PLACES.values(), "鈴木　太郎", "佐藤　太郎", "山田　太郎", code,
                  identity["name_kana"]):
        assert value not in text, value
    shown = juki(home, "audit", "self", "--code", code, "--reader", READER0,
                 input=f"{AUTH_PIN}\n").stdout
    assert "four-info-changed" in shown and "養子縁組" in shown and "FAILED" not in shown
    assert shown.count("inclusion proof verified") == len(incidental)
