"""The counter session on an issued card: the issuer security domain's SCP03 level-33
session (the card's transport keys, derived in the token: the same keys as
personalisation and wipe), which on a SECURED card spans the applications but admits
only the counter set (docs/protocol.md, "Counter session on an issued card"): rewrite
the listed EFs and the 共通AP record, regenerate a JPKI key, reset a PIN.

New PIN values travel only inside the encrypted session (marked sensitive, so the APDU
trace redacts them); nothing here logs them or keeps them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.apps.base import WritableApSession, open_secure
from cardlib.apps.issuer import IssuerSession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, CardInfoFile, CommonFile, JpkiFile, JukiFile, LifeCycle
from hsm.diversify import KeySet, card_keys
from hsm.token import Hsm

from ..errors import IssuanceError
from ..station.card_keys import token_prfs

log = logging.getLogger(__name__)

# The PINs the counter may reset (RESET RETRY COUNTER): name -> (AID, PIN EF).
PIN_TARGETS: dict[str, tuple[bytes, int]] = {
    "card-info": (Aid.CARD_INFO.value, CardInfoFile.PIN),
    "jpki-auth": (Aid.JPKI.value, JpkiFile.AUTH_PIN),
    "jpki-sign": (Aid.JPKI.value, JpkiFile.SIGN_PIN),
    "juki": (Aid.RESIDENT_REGISTRY.value, JukiFile.PIN),
    "common": (Aid.COMMON.value, CommonFile.PIN),
}


class CounterSession:
    """Counter work on one issued card, through its issuer-domain SCP03 session.
    Open it with ``CounterSession.open``; every method SELECTs the application first."""

    def __init__(self, secure: ApduChannel, serial: str) -> None:
        self._channel = secure
        self.serial = serial

    def __repr__(self) -> str:
        return f"CounterSession(card {self.serial})"

    @classmethod
    @contextmanager
    def open(cls, channel: ApduChannel, hsm: Hsm, serial: str) -> Iterator[CounterSession]:
        """Check that the card in the reader is ``serial`` and issued (SECURED), then open
        the issuer domain's SCP03 session with its transport keys (derived in the token
        for the duration of the session)."""
        issuer = IssuerSession(channel)
        issuer.select()
        info = issuer.read_info()
        if info.card_serial != serial:
            raise IssuanceError(f"the card in the reader is {info.card_serial}, not {serial}")
        if info.life_cycle != LifeCycle.SECURED:
            raise IssuanceError(
                f"card {serial} is not an issued card (life cycle {info.life_cycle.name}, "
                "expected SECURED): counter work needs an issued card")
        with card_keys(hsm, serial, KeySet.ISSUER_TRANSPORT) as transport:
            secure = open_secure(channel, IssuerSession, token_prfs(transport))
            log.info("card %s: counter session open", serial)
            yield cls(secure.channel, serial)
        log.info("card %s: counter session closed", serial)

    def _ap(self, aid: bytes) -> WritableApSession:
        ap = WritableApSession(self._channel, bytes(aid))
        ap.select()
        return ap

    def rewrite_file(self, aid: bytes, fid: int, content: bytes) -> None:
        """SELECT the AP and the EF, ERASE BINARY (the EF back to FF), UPDATE BINARY in
        chunks: afterwards the EF holds ``content`` followed by filler."""
        ap = self._ap(aid)
        ap.erase_binary(fid)
        ap.write_file(fid, content)
        log.info("card %s: EF %04X of %s rewritten (%d bytes)", self.serial, fid,
                 bytes(aid).hex().upper(), len(content))

    def rewrite_record(self, aid: bytes, fid: int, number: int, content: bytes) -> None:
        """UPDATE RECORD ``number`` of record EF ``fid`` (the card admits 共通AP 0001/1)."""
        self._ap(aid).update_record(fid, number, content)
        log.info("card %s: record %d of EF %04X of %s rewritten", self.serial, number, fid,
                 bytes(aid).hex().upper())

    def regenerate_key(self, aid: bytes, key_fid: int) -> rsa.RSAPublicKey:
        """GENERATE KEY into ``key_fid`` (the card admits JPKI 0017 and 001A): the old
        private key is gone; returns the new public key."""
        public_key = self._ap(aid).generate_rsa_key(key_fid)
        log.info("card %s: key %04X of %s regenerated", self.serial, key_fid,
                 bytes(aid).hex().upper())
        return public_key

    def reset_pin(self, target: str, new_value: str) -> None:
        """RESET RETRY COUNTER of the PIN ``target`` (a PIN_TARGETS name): the new value,
        the full retry counter. The card refuses a value of the wrong format (6A80)."""
        if target not in PIN_TARGETS:
            raise ValueError(f"unknown PIN {target!r}; one of {', '.join(PIN_TARGETS)}")
        aid, fid = PIN_TARGETS[target]
        self._ap(aid).reset_retry_counter(fid, new_value)
        log.info("card %s: PIN %s reset", self.serial, target)
