"""Per-card SCP03 keys derived in SoftHSM: known answers against a software model with
an imported master, protection attributes, wrapping for PUT KEY."""

from __future__ import annotations

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from cardlib.scp03.crypto import aes_cbc_encrypt, aes_cmac, aes_ecb_block
from hsm.diversify import (
    CardKeys,
    KeyPurpose,
    KeySet,
    _derive,
    card_keys,
    diversification_block,
    export_for_card_maker,
)

SERIAL = "012345678901234"


def test_diversification_block_layout() -> None:
    block = diversification_block(SERIAL, KeySet.RESIDENT_REGISTRY, KeyPurpose.MAC)
    assert block.hex() == "0202000000000000" + "012345678901234f"
    with pytest.raises(ValueError):
        diversification_block("12345", KeySet.RESIDENT_REGISTRY, KeyPurpose.MAC)


@pytest.fixture
def known_masters(station):  # type: ignore[no-untyped-def]
    """Session master keys with known values, to check the token against software."""
    values = {p: bytes([p]) * 32 for p in KeyPurpose}
    with station.hsm.locked() as session:
        objects = {p: session.create_object({
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: v, Attribute.TOKEN: False, Attribute.DERIVE: True,
            Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}) for p, v in values.items()}
    yield values, objects
    with station.hsm.locked():
        for obj in objects.values():
            obj.destroy()


def _card_keys(station, objects, key_set: KeySet) -> CardKeys:  # type: ignore[no-untyped-def]
    with station.hsm.locked() as session:
        handles = {p: _derive(session, objects[p], diversification_block(SERIAL, key_set, p))
                   for p in KeyPurpose}
    return CardKeys(station.hsm, SERIAL, key_set, handles)


def test_token_derivation_and_cmac_match_software(station, known_masters) -> None:  # type: ignore[no-untyped-def]
    values, objects = known_masters
    keys = _card_keys(station, objects, KeySet.RESIDENT_REGISTRY)
    for purpose in KeyPurpose:
        software = aes_ecb_block(values[purpose],
                                 diversification_block(SERIAL, KeySet.RESIDENT_REGISTRY, purpose))
        assert keys.cmac(purpose, b"derivation data") == aes_cmac(software, b"derivation data")
        assert keys.key_check_value(purpose) == aes_ecb_block(software, b"\x01" * 16)[:3]
    transport = _card_keys(station, objects, KeySet.ISSUER_TRANSPORT)
    dek = aes_ecb_block(values[KeyPurpose.DEK],
                        diversification_block(SERIAL, KeySet.ISSUER_TRANSPORT, KeyPurpose.DEK))
    enc = aes_ecb_block(values[KeyPurpose.ENC],
                        diversification_block(SERIAL, KeySet.RESIDENT_REGISTRY, KeyPurpose.ENC))
    wrapped = keys.wrapped_under_dek_of(transport, KeyPurpose.ENC)
    assert wrapped == aes_cbc_encrypt(dek, bytes(16), enc)  # GP PUT KEY encryption


def test_derived_card_keys_cannot_be_read(station) -> None:  # type: ignore[no-untyped-def]
    with card_keys(station.hsm, SERIAL, KeySet.RESIDENT_REGISTRY) as keys:
        handle = keys.handles[KeyPurpose.ENC]
        with station.hsm.locked(), pytest.raises(pkcs11.AttributeSensitive):
            handle[Attribute.VALUE]
        assert "ENC" not in repr(keys) and SERIAL in repr(keys)


def test_card_maker_export_matches_the_station_derivation(station) -> None:  # type: ignore[no-untyped-def]
    exported = export_for_card_maker(station.hsm, SERIAL)
    with card_keys(station.hsm, SERIAL, KeySet.ISSUER_TRANSPORT) as keys:
        for purpose in KeyPurpose:
            assert keys.cmac(purpose, b"x") == aes_cmac(exported[purpose], b"x")
    with card_keys(station.hsm, "999999999999999", KeySet.ISSUER_TRANSPORT) as other:
        assert other.cmac(KeyPurpose.MAC, b"x") != aes_cmac(exported[KeyPurpose.MAC], b"x")
