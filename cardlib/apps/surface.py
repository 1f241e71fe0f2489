"""Card surface AP (券面事項確認AP, RC §5): the printed face as signed records.

Three keys open its files: the 生年月日 key ``0011`` (和暦 YYMMDD) the age record
``0001`` only; 照合番号B ``0012`` the face ``0002`` (and ``0003``, ``0004``, ``0006``);
照合番号A ``0013`` the same and the rendered number ``0005``. There is no secure
messaging in this AP (SET SESSION KEY answers ``66F1``): the secrets travel in the
clear, as on the real card. ``presence_signature`` (of every AP session) is ``80 2A 00 00``,
here by key ``001A``, which needs no credential.
"""

from __future__ import annotations

from ..constants import Aid, SurfaceFile
from .base import ApplicationSession, PinStatus

SURFACE_KEYS = (SurfaceFile.BIRTH_DATE_KEY, SurfaceFile.COLLATION_B, SurfaceFile.COLLATION_A)
KEY_LENGTHS = {SurfaceFile.BIRTH_DATE_KEY: 6, SurfaceFile.COLLATION_B: 14,
               SurfaceFile.COLLATION_A: 12}
KEY_NAMES = {SurfaceFile.BIRTH_DATE_KEY: "birth date key", SurfaceFile.COLLATION_B: "照合番号B",
             SurfaceFile.COLLATION_A: "照合番号A"}


class SurfaceApSession(ApplicationSession):
    AID = Aid.CARD_SURFACE

    def present(self, key: SurfaceFile, secret: str) -> None:
        """VERIFY one of the AP's three keys (``InvalidPinError`` with tries left). The
        secret is checked for its form first, so a typo spends no try."""
        if key not in SURFACE_KEYS:
            raise ValueError(f"{key!r} is not a key of the surface AP")
        if len(secret) != KEY_LENGTHS[key] or not secret.isascii() or not secret.isdigit():
            raise ValueError(f"the {KEY_NAMES[key]} is {KEY_LENGTHS[key]} digits")
        self.verify_pin(secret, key)

    def key_status(self, key: SurfaceFile) -> PinStatus:
        """Empty VERIFY: tries left, spending none."""
        return self.pin_status(key)

    def read_file(self, fid: SurfaceFile) -> bytes:
        """The object of EF ``fid`` (the length its header announces, filler left out)."""
        return self.read_tlv_file(fid)
