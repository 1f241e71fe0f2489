"""The resident-registry AP and PUT KEY, on the emulator, with software SCP03 keys."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardlib.apdu import CommandApdu
from cardlib.apps.base import open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.apps.resident_registry import ResidentRegistrySession, open_registry
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, LifeCycle, RegistryFile
from cardlib.emulator.profiles import blank_resident_card
from cardlib.emulator.resident_card_os import ResidentCardOs
from cardlib.errors import (
    ApduError,
    CardDataError,
    SecureMessagingError,
    SecurityStatusNotSatisfiedError,
)
from cardlib.registry_records import CodeChange, decode_history, encode_code, encode_history
from cardlib.scp03.crypto import aes_cbc_encrypt, aes_ecb_block
from cardlib.scp03.keys import StaticKeyPrfs
from tests.helpers import TRANSPORT_KEYS, card_channel, personalising

TRANSPORT = TRANSPORT_KEYS
REGISTRY = {"enc": b"\x44" * 16, "mac": b"\x55" * 16, "dek": b"\x66" * 16}
CODE, NEW_CODE = "28374650191", "55120933867"
TODAY = dt.date(2026, 11, 27)


def prfs(keys: dict[str, bytes]) -> StaticKeyPrfs:
    return StaticKeyPrfs.from_software_keys(keys["enc"], keys["mac"])


def components(keys: dict[str, bytes], dek: bytes) -> list[tuple[bytes, bytes]]:
    return [(aes_cbc_encrypt(dek, bytes(16), keys[name]), aes_ecb_block(keys[name], b"\x01" * 16)[:3])
            for name in ("enc", "mac", "dek")]


def load_registry_keys(channel: ApduChannel) -> None:
    isd = open_secure(channel, IssuerSession, prfs(TRANSPORT))
    assert isinstance(isd, IssuerSession)
    isd.put_key(Aid.RESIDENT_REGISTRY, 0x30, components(REGISTRY, TRANSPORT["dek"]))


@pytest.fixture
def personalised():  # type: ignore[no-untyped-def]
    card, channel = card_channel(ResidentCardOs(blank_resident_card(transport_keys=TRANSPORT)))
    load_registry_keys(channel)
    registry = open_registry(channel, prfs(REGISTRY))
    registry.write_file(RegistryFile.RECORD_CODE, encode_code(CODE))
    registry.write_file(RegistryFile.CHANGE_HISTORY, encode_history([]))
    return card, channel


def test_code_read_and_change_under_scp03(personalised) -> None:  # type: ignore[no-untyped-def]
    card, channel = personalised
    IssuerSession(personalising(channel)).lock()
    registry = open_registry(channel, prfs(REGISTRY))
    assert registry.read_code() == CODE and registry.read_history() == []
    registry.change_code(NEW_CODE, TODAY, "本人の請求")
    assert registry.read_code() == NEW_CODE
    assert registry.read_history() == [CodeChange(TODAY, "本人の請求", CODE)]
    with pytest.raises(ApduError) as info:  # a retired code never comes back
        registry.change_code(CODE, TODAY, "again")
    assert info.value.sw == 0x6A80
    # issued: UPDATE BINARY only in the issuer domain's counter session, never in the AP's own
    with pytest.raises(SecurityStatusNotSatisfiedError):
        registry.write_file(RegistryFile.RECORD_CODE, encode_code(CODE))
    assert card.state.life_cycle == LifeCycle.SECURED


def test_nothing_but_select_without_a_level_33_session(personalised) -> None:  # type: ignore[no-untyped-def]
    _card, channel = personalised
    plain = ResidentRegistrySession(channel)
    plain.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):
        plain.read_code()
    weak = open_secure(channel, ResidentRegistrySession, prfs(REGISTRY), level=0x03)
    with pytest.raises(SecurityStatusNotSatisfiedError):
        weak.read_code()  # type: ignore[attr-defined]


def test_wrong_keys_never_reach_external_authenticate(personalised) -> None:  # type: ignore[no-untyped-def]
    _card, channel = personalised
    with pytest.raises(SecureMessagingError, match="card cryptogram"):
        open_registry(channel, prfs(TRANSPORT))


def test_selecting_another_application_ends_the_session(personalised) -> None:  # type: ignore[no-untyped-def]
    card, channel = personalised
    registry = open_registry(channel, prfs(REGISTRY))
    assert registry.read_code() == CODE
    IssuerSession(channel).select()
    assert card.sm.channel is None
    with pytest.raises(SecurityStatusNotSatisfiedError):  # the card refuses: no session
        registry.read_code()


def test_put_key_needs_the_issuer_channel_and_right_kcvs() -> None:
    card, channel = card_channel(ResidentCardOs(blank_resident_card(transport_keys=TRANSPORT)))
    issuer = IssuerSession(channel)
    issuer.select()
    with pytest.raises(SecurityStatusNotSatisfiedError):  # in the clear
        issuer.put_key(Aid.RESIDENT_REGISTRY, 0x30, components(REGISTRY, TRANSPORT["dek"]))
    isd = open_secure(channel, IssuerSession, prfs(TRANSPORT))
    wrong_dek = components(REGISTRY, b"\x99" * 16)  # decrypts to other keys: KCVs fail
    with pytest.raises(ApduError) as info:
        isd.put_key(Aid.RESIDENT_REGISTRY, 0x30, wrong_dek)  # type: ignore[attr-defined]
    assert info.value.sw == 0x6A80
    assert card.state.apps[Aid.RESIDENT_REGISTRY.hex()].scp is None


def test_blank_card_without_transport_keys_has_no_channel() -> None:
    _card, channel = card_channel(ResidentCardOs(blank_resident_card()))
    IssuerSession(channel).select()
    with pytest.raises(ApduError) as info:
        channel.send(CommandApdu(0x80, 0x50, 0x30, 0x00, bytes(8), 256))
    assert info.value.sw == 0x6A88


@given(st.lists(st.tuples(st.dates(dt.date(2000, 1, 1), dt.date(2099, 1, 1)),
                          st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs",)),
                                  min_size=1, max_size=30).filter(str.strip)), max_size=4))
def test_history_round_trip(entries) -> None:  # type: ignore[no-untyped-def]
    changes = [CodeChange(date, reason, CODE) for date, reason in entries]
    assert decode_history(encode_history(changes)) == changes


@given(st.binary(max_size=80))
def test_history_fuzz(raw: bytes) -> None:
    with contextlib.suppress(CardDataError):
        decode_history(raw)
