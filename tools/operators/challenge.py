"""What an operator card signs to log in: a challenge bound to the station and the purpose.

    message = "juki operator login v1" 00
              len(station ID) (2 bytes, big-endian) station ID (UTF-8)
              len(purpose) (2 bytes, big-endian) purpose (ASCII)
              nonce (32 bytes from the token's RNG)

The card's PIV Authentication key (9A) signs SHA-256(message) (GENERAL AUTHENTICATE over
the digest). The station keeps the nonce outstanding and, when the signature comes back,
redeems it once and recomputes the message with its own station ID and the purpose it
asked for: a signature made for another station, another purpose (a PAM login, a
session) or another protocol does not verify here, and a nonce is accepted once.
"""

from __future__ import annotations

from enum import StrEnum

from hsm.token import Hsm
from hsm.verify import ChallengeBook, PublicKeyCache

DOMAIN = b"juki operator login v1\x00"


class LoginPurpose(StrEnum):
    SESSION = "station-session"  # `juki login`: a station session
    PAM = "pam"  # `juki pam-auth`: the login manager's session


def _field(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("challenge field longer than 65535 bytes")
    return len(data).to_bytes(2, "big") + data


def bound_message(station_id: str, purpose: str, nonce: bytes) -> bytes:
    """The bytes the card signs (hashed with SHA-256) for ``nonce``."""
    return DOMAIN + _field(station_id.encode("utf-8")) + _field(purpose.encode("ascii")) + nonce


class LoginChallenges:
    """Single-use login challenges of one station, and the check of the card's answer."""

    def __init__(self, hsm: Hsm, station_id: str) -> None:
        self.station_id = station_id
        self._book = ChallengeBook(hsm)
        self._keys = PublicKeyCache(hsm)

    def mint(self, purpose: LoginPurpose) -> tuple[bytes, bytes]:
        """(nonce, the message for the card to sign) for a login for ``purpose`` here."""
        nonce = self._book.issue()
        return nonce, bound_message(self.station_id, purpose.value, nonce)

    def redeem(self, nonce: bytes) -> bool:
        """True the first time an issued nonce is redeemed, False ever after."""
        return self._book.redeem(nonce)

    def signed_here(self, nonce: bytes, purpose: LoginPurpose, public_key: object,
                    signature: bytes) -> bool:
        """Does ``signature`` (by ``public_key``) cover the message of ``nonce`` bound to
        this station and ``purpose``? Checked in the token. Redeem the nonce first."""
        return self._keys.verify_sha256(public_key, bound_message(self.station_id, purpose.value,
                                                                  nonce), signature)
