"""Extended-length APDUs through pyscard -> pcscd -> vpcd -> emulated card (RC §2.1):
SET SESSION KEY, GET DATA of large MF objects and SM READ BINARY need them."""

from __future__ import annotations

from cardlib import pcsc
from cardlib.constants import Aid


def test_extended_lc_and_extended_le_reach_the_card(blank_reader: str) -> None:
    with pcsc.PcscTransport(blank_reader) as transport:
        # 300-byte extended Lc: an AID that no card has, so the card answers 6A82 only
        # when it decoded the whole extended command (a cut one would be 6700).
        data, sw = transport.send_and_receive(
            bytes.fromhex("00A4040C00012C") + bytes(range(256)) + bytes(44))
        assert (data, sw) == (b"", 0x6A82)
        isd = Aid.ISSUER_SECURITY_DOMAIN
        data, sw = transport.send_and_receive(bytes((0, 0xA4, 4, 0x0C, len(isd))) + isd)
        assert sw == 0x9000
        # extended Le 0000 (= 65536): GET DATA of the card serial
        data, sw = transport.send_and_receive(bytes.fromhex("80CA0045000000"))
        assert sw == 0x9000
        assert len(data) == 15 and data.isdigit()  # the ASCII card number
        # an answer longer than 256 bytes in one piece: the card-info AP's EF 0004 (568
        # bytes, free; FF on a blank card) read with extended Le 0000
        info = Aid.CARD_INFO
        assert transport.send_and_receive(bytes((0, 0xA4, 4, 0x0C, len(info))) + info)[1] == 0x9000
        assert transport.send_and_receive(bytes.fromhex("00A4020C020004"))[1] == 0x9000
        assert transport.send_and_receive(bytes.fromhex("00B00000000000")) == (b"\xff" * 568,
                                                                              0x9000)
        # and the card tells an extended Le from a short one (GET CHALLENGE: 6985)
        assert transport.send_and_receive(bytes.fromhex("00840000000008")) == (b"", 0x6985)
