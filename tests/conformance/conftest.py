"""The conformance tier: raw APDUs through pyscard -> pcscd -> vpcd to an emulated
resident card our station issued, checked against ../shared/reference/real-card.md
(RC). One card per module (module-scoped), in rig slot 1 (slot 0 is the other tiers').

The card is issued for the person of RC §11 samples A/B (黒桐　幹也, 個人番号
537686677188, born 1980-02-17, male, Kiyose-shi), so that its EF 0001 and EF 0002
can be compared with the published bytes and its SM session with the §11.2 vectors.
Run under the machine-wide rig lock:
``flock /tmp/juki-rig.lock .venv/bin/pytest -q -p no:cacheprovider tests/conformance``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.rig.rig import Rig, reader_name
from tools.station.home import StationHome

from .raw_reader import RawCard

SLOT = 1
READER = reader_name(SLOT)
SAMPLE_NUMBER = "537686677188"  # RC §11.1 A
SAMPLE_NAME = "黒桐　幹也"  # RC §11.1 B
SAMPLE_ADDRESS = "東京都清瀬市観布子南１２－７－２０２"
SAMPLE_BIRTH = dt.date(1980, 2, 17)
KIYOSE = "132217"  # 13221 + its check digit (the request takes the 6-digit code)
# Test PINs of the rig's cards (never real ones).
CARD_INFO_PIN, JPKI_AUTH_PIN, JPKI_SIGN_PIN = "5823", "2468", "JUKI2468"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "conformance" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.conformance)


@dataclasses.dataclass(frozen=True)
class IssuedResident:
    reader: str
    serial: str
    expiry: dt.date
    security_code: str | None  # None until issuance returns one (part I)
    state: Path

    @property
    def collation_b(self) -> str | None:
        """RC §4.2: 和暦 YYMMDD of birth + expiry year + security code (昭和55 = 1980)."""
        if self.security_code is None:
            return None
        return f"550217{self.expiry.year:04d}{self.security_code}"


def _request(tmp: Path):  # type: ignore[no-untyped-def]
    from tools.issuance.request import load_request
    from tools.registry import new_record_code

    raw = {"name": SAMPLE_NAME, "birth_date": SAMPLE_BIRTH.isoformat(), "sex": "1",
           "address": SAMPLE_ADDRESS, "resident_code": new_record_code(),
           "municipality_code": KIYOSE, "individual_number": SAMPLE_NUMBER}
    path = tmp / "request.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return load_request(path)


def issue_sample_card(station, rig: Rig, directory: Path, slot: int = SLOT) -> IssuedResident:  # type: ignore[no-untyped-def]
    from tools.issuance.resident_card import issue_resident_card
    from tools.station.pins import Pin, ResidentCardPins
    from tools.station.readers import open_card

    state = directory / "resident.json"
    rig.insert_card(slot, state)
    request = _request(directory)
    pins = ResidentCardPins(Pin(CARD_INFO_PIN), Pin(JPKI_AUTH_PIN), Pin(JPKI_SIGN_PIN))
    with open_card(reader_name(slot)) as channel:
        issued = issue_resident_card(channel, station.hsm, station.registry, request, pins)
    code = getattr(issued, "security_code", None)
    return IssuedResident(reader_name(slot), issued.card_serial, issued.expiry,
                          code.reveal() if code is not None else None, state)


@pytest.fixture(scope="session")
def rig(rig_home: Path) -> Rig:
    return Rig(StationHome(rig_home))


@pytest.fixture(scope="module")
def resident(station, rig: Rig, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IssuedResident]:  # type: ignore[no-untyped-def]
    """A resident card issued by the rig's station for this module alone; afterwards the
    slot gets its own card back (as `rig up` left it)."""
    yield issue_sample_card(station, rig, tmp_path_factory.mktemp("conformance"))
    rig.insert_card(SLOT)


@pytest.fixture
def card(resident: IssuedResident) -> Iterator[RawCard]:
    """A fresh, powered-up connection to the module's card (power-off at the end, so
    no security status leaks from one test to the next: RC §2.1)."""
    raw = RawCard(resident.reader)
    raw.reconnect(unpower=True)
    try:
        yield raw
    finally:
        raw.close()


def token_anchor(station, role: str) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """(16-byte CV key ID, modulus) of the newest version of a CV role in the token."""
    from pkcs11 import Attribute, ObjectClass

    from hsm.keys import current_version
    from hsm.roles import KeyRole, label_for

    key_role = KeyRole(role)
    label = label_for(key_role, current_version(station.hsm, key_role))

    def read(session):  # type: ignore[no-untyped-def]
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
        return bytes(public[Attribute.ID]), bytes(public[Attribute.MODULUS]).rjust(256, b"\x00")

    return station.hsm.call(read)
