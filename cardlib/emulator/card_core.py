"""What every command handler of the virtual card shares: its state, its RAM, and the
helpers that find the selected application, file, PIN or key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from ..apdu import CommandApdu, join_response
from ..constants import SM_LEVEL_FULL, Aid, LifeCycle
from ..errors import CardDataError
from ..status import SW, CardStatus
from .secure import CardSecureMessaging
from .state import AppState, CardState, FileState, PinState

log = logging.getLogger(__name__)

Handler = Callable[[CommandApdu], bytes]


class CardOs(Protocol):
    """What a reader link (vpcd, in-process transport) needs of an emulated card."""

    @property
    def atr(self) -> bytes: ...
    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...
    def process_apdu(self, raw: bytes) -> bytes: ...


@dataclass
class VolatileState:
    """RAM of the card: all lost on power-off; a warm reset keeps the security status
    (``verified``, ``status_aid``, ``admin``), as the real card does (real-card.md §2.1)."""

    selected_aid: str | None = None
    selected_fid: str | None = None
    verified: set[str] = field(default_factory=set)  # key references verified in status_aid
    status_aid: str | None = None  # the application the security status belongs to
    pending_response: bytes = b""
    challenge: bytes | None = None
    chain: tuple[tuple[int, int, int], bytes] | None = None  # (INS, P1, P2), data so far
    witness: bytes | None = None  # PIV management-key witness, single-use
    admin: bool = False  # PIV: management key authenticated in this session


class CardCore:
    """State, helpers and the command dispatch of a card OS; each card OS names its
    commands in ``_command_table`` and admits or refuses a command in ``_process``."""

    def __init__(self, state: CardState, persist: Callable[[CardState], None] | None = None):
        self.state = state
        self._persist = persist or (lambda _state: None)
        self.ram = VolatileState()
        self.sm = CardSecureMessaging()
        self._protected = False  # the command being executed arrived under secure messaging
        self._loaded_keys: dict[str, PrivateKeyTypes] = {}  # PEM -> parsed (parsing is slow)
        self._handlers: dict[int, Handler] = self._command_table()

    @property
    def atr(self) -> bytes:
        return bytes.fromhex(self.state.atr)

    def power_on(self) -> None:
        """Power on (and off): the RAM is gone, every security status with it."""
        self.ram = VolatileState()
        self.sm.reset()

    power_off = power_on

    def reset(self) -> None:
        """Warm reset: back to the MF with no application selected and no secure channel,
        but verified PINs (and a PIV management authentication) stay in force, as on the
        real card; only a power-off clears them."""
        kept = self.ram
        self.ram = VolatileState(verified=kept.verified, status_aid=kept.status_aid,
                                 admin=kept.admin)
        self.sm.reset()

    # ---- dispatch -------------------------------------------------------------------

    def _command_table(self) -> dict[int, Handler]:
        """INS -> handler of this card OS."""
        return {}

    def process_apdu(self, raw: bytes) -> bytes:
        try:
            apdu = CommandApdu.decode(raw)
        except CardDataError:
            return join_response(b"", SW.WRONG_LENGTH)
        return self._process(apdu)

    def _process(self, apdu: CommandApdu) -> bytes:
        """The R-APDU of one decoded command (the card OS's admission rules, then ``_run``)."""
        raise NotImplementedError

    def _run(self, apdu: CommandApdu) -> tuple[bytes, int]:
        """Run the handler of an admitted command; its refusal, a failed EEPROM write or
        a card OS bug become a status word (never an exception, which reads as a removal)."""
        try:
            return self._handlers[apdu.ins](apdu), SW.OK
        except CardStatus as status:
            return b"", status.sw
        except OSError:  # the EEPROM (state file) could not be written: fail closed
            log.exception("card state write failed")
            return b"", SW.MEMORY_FAILURE
        except Exception:
            log.exception("%s error on INS %02X", type(self).__name__, apdu.ins)
            return b"", SW.UNKNOWN

    def _app(self) -> AppState:
        """The current DF: the selected application; with none selected, the MF level
        (kept in the issuer domain's entry), if the card has one."""
        aid = self.ram.selected_aid
        if aid is None:
            aid = Aid.ISSUER_SECURITY_DOMAIN.hex()
            if aid not in self.state.apps:
                raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)
        return self.state.apps[aid]

    def _at_mf_level(self) -> bool:
        """No application selected (power-on), or the ISD selected (which restores it)."""
        return self.ram.selected_aid in (None, Aid.ISSUER_SECURITY_DOMAIN.hex())

    def _referenced_fid(self, p2: int, table: Mapping[str, object], missing: int) -> str:
        """The key or PIN a P2 names: ``80`` = the current EF, ``80+sfi`` = EF ``00sfi``."""
        if p2 == 0x80:
            return self._selected_fid(table, missing)
        if p2 & 0xE0 != 0x80:
            raise CardStatus(SW.INCORRECT_P1P2)
        fid = f"{p2 & 0x1F:04X}"
        if fid not in table:
            raise CardStatus(missing)
        return fid

    def _personalisation_session(self) -> bool:
        """A blank card's issuer-domain SCP03 session at level 33 spans every application:
        personalisation goes through it (and SELECTs do not end it) until the lock."""
        return (self.state.life_cycle == LifeCycle.OP_READY
                and self.sm.bound_aid == Aid.ISSUER_SECURITY_DOMAIN.hex()
                and self.sm.level == SM_LEVEL_FULL)

    def _counter_session(self) -> bool:
        """An issued card's issuer-domain SCP03 session at level 33 (the transport keys):
        it spans the applications like the personalisation session, but admits only the
        counter set (``counter_rules``)."""
        return (self.state.life_cycle == LifeCycle.SECURED
                and self.sm.bound_aid == Aid.ISSUER_SECURITY_DOMAIN.hex()
                and self.sm.level == SM_LEVEL_FULL)

    def _spanning_session(self) -> bool:
        """The issuer domain's level-33 session, which SELECTs of applications do not end."""
        return self._personalisation_session() or self._counter_session()

    def _require_writable(self) -> None:
        """A write to an application: on a blank card the personalisation rule; on an
        issued card only a command of the counter session (which ``_process`` has already
        checked against the counter set), anything else 6982."""
        if self.state.life_cycle == LifeCycle.OP_READY:
            self._require_personalisable()
        elif not self._protected or not self._counter_session():
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)

    def _save_or_restore(self, restore: Callable[[], None]) -> None:
        """Persist; if the EEPROM write fails, ``restore`` the old value in RAM too (the
        command answers 6581 and the card keeps what it had)."""
        try:
            self._save()
        except OSError:
            restore()
            raise

    def _require_personalisable(self) -> None:
        """Only a blank card, and only under SCP03 level 33 (the issuer domain's, or the
        application's own for the resident-registry AP)."""
        if not self._protected or self.sm.level != SM_LEVEL_FULL:
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)
        if self.state.life_cycle != LifeCycle.OP_READY:
            raise CardStatus(SW.CONDITIONS_NOT_SATISFIED)

    def _respond(self, data: bytes, sw: int, ne: int | None) -> bytes:
        """The R-APDU; data longer than Ne (256 for Le=00) goes out in 61xx parts."""
        limit = ne or 256
        if sw != SW.OK or len(data) <= limit:
            return join_response(data, sw)
        self.ram.pending_response = data[limit:]
        return join_response(data[:limit], SW.BYTES_AVAILABLE | (min(len(data) - limit, 256) & 0xFF))

    def _get_response(self, apdu: CommandApdu) -> bytes:
        pending = self.ram.pending_response
        if not pending or apdu.p1 or apdu.p2:
            self.ram.pending_response = b""
            return join_response(b"", SW.CONDITIONS_NOT_SATISFIED)
        self.ram.pending_response = b""
        return self._respond(pending, SW.OK, apdu.ne)

    def _key_from_pem(self, pem: str) -> PrivateKeyTypes:
        """A stored private key, parsed once per card session (parsing is slow)."""
        key = self._loaded_keys.get(pem)
        if key is None:
            key = self._loaded_keys[pem] = serialization.load_pem_private_key(
                pem.encode("ascii"), password=None)
        return key

    def _store_new_key(self, keys: dict[str, str | None], reference: str,
                       key: PrivateKeyTypes) -> None:
        """Keep a key generated on the card (PKCS#8 PEM) and persist the state."""
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
        kept = keys.get(reference)
        keys[reference] = pem
        self._loaded_keys[pem] = key
        self._save_or_restore(lambda: keys.__setitem__(reference, kept))

    def _save(self) -> None:
        self._persist(self.state)

    def _selected_fid(self, table: Mapping[str, object], missing: int) -> str:
        """FID of the current EF if it is in ``table`` (files, PINs or keys), else ``missing``."""
        fid = self.ram.selected_fid
        if fid is None or fid not in table:
            raise CardStatus(missing)
        return fid

    def _selected_file(self) -> FileState:
        files = self._app().files
        return files[self._selected_fid(files, SW.COMMAND_NOT_ALLOWED)]

    def _selected_pin(self) -> tuple[str, PinState]:
        pins = self._app().pins
        fid = self._selected_fid(pins, SW.REFERENCED_DATA_NOT_FOUND)
        return fid, pins[fid]
