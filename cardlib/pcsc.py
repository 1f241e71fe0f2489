"""The PC/SC adapter: the only module that imports pyscard.

One ``PcscTransport`` is one card connection for a whole flow: closing it powers the
card off (``SCardDisconnect`` with ``SCARD_UNPOWER_CARD``), because a verified PIN
survives a plain close and a warm reset (``SCARD_LEAVE_CARD``, ``SCARD_RESET_CARD``) and
would be there for the next program (real-card.md §2.1). A flow that must not be
interleaved with other hosts' APDUs connects exclusively.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from smartcard import scard
from smartcard.Exceptions import CardConnectionException, NoCardException
from smartcard.pcsc.PCSCExceptions import EstablishContextException
from smartcard.System import readers as pyscard_readers

from .errors import (
    CardRemovedError,
    NoCardError,
    PcscServiceError,
    ReaderBusyError,
    ReaderNotFoundError,
    TransportError,
)

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class ReaderState:
    name: str
    card_present: bool
    atr: bytes


def list_readers() -> list[str]:
    try:
        return [str(r) for r in pyscard_readers()]
    except EstablishContextException as exc:
        raise PcscServiceError("PC/SC service (pcscd) is not running or not reachable") from exc


def reader_states() -> list[ReaderState]:
    """Presence of a card in every reader, from SCardGetStatusChange (no connection)."""
    names = list_readers()
    if not names:
        return []
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        raise PcscServiceError("PC/SC service (pcscd) is not reachable")
    try:
        result, states = scard.SCardGetStatusChange(
            context, 0, [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        )
        if result not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
            raise TransportError(f"SCardGetStatusChange failed: {scard.SCardGetErrorMessage(result)}")
        return [
            ReaderState(name, bool(event & scard.SCARD_STATE_PRESENT)
                        and not event & scard.SCARD_STATE_MUTE, bytes(atr))
            for name, event, atr in states
        ]
    finally:
        scard.SCardReleaseContext(context)


def resolve_reader(wanted: str | None, readers: list[str]) -> list[str]:
    """Readers matching ``wanted``: an exact name, an index, or a unique substring."""
    if wanted is None:
        return readers
    if wanted in readers:
        return [wanted]
    if wanted.isdigit() and int(wanted) < len(readers):
        return [readers[int(wanted)]]
    matches = [r for r in readers if wanted.lower() in r.lower()]
    if len(matches) == 1:
        return matches
    if not matches:
        raise ReaderNotFoundError(f"no reader matches {wanted!r}; readers: {readers}")
    raise ReaderNotFoundError(f"reader {wanted!r} is ambiguous: {matches}")


def wait_for_card(wanted: str | None = None, timeout: float = 10.0) -> str:
    """Name of the first matching reader holding a card; waits up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        candidates = resolve_reader(wanted, list_readers())
        present = {s.name for s in reader_states() if s.card_present}
        for name in candidates:
            if name in present:
                return name
        if time.monotonic() >= deadline:
            where = wanted if wanted is not None else "any reader"
            raise NoCardError(f"no card presented in {where} within {timeout:g} s")
        time.sleep(POLL_INTERVAL_S)


class PcscTransport:
    """``send_and_receive`` over one pyscard connection (T=1 or T=0, as negotiated)."""

    def __init__(self, reader_name: str, *, exclusive: bool = False) -> None:
        self.reader_name = reader_name
        matches = [r for r in pyscard_readers() if str(r) == reader_name]
        if not matches:
            raise ReaderNotFoundError(f"reader {reader_name!r} not found")
        self._connection = matches[0].createConnection()
        mode = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        try:
            # pyscard keeps the disposition given here for disconnect(): power off
            self._connection.connect(mode=mode, disposition=scard.SCARD_UNPOWER_CARD)
        except NoCardException as exc:
            raise NoCardError(f"no card in reader {reader_name!r}") from exc
        except CardConnectionException as exc:
            if getattr(exc, "hresult", None) == scard.SCARD_E_SHARING_VIOLATION:
                raise ReaderBusyError(f"the card in {reader_name!r} is in use by another "
                                      "application") from exc
            raise TransportError(f"cannot connect to the card in {reader_name!r}: {exc}") from exc
        try:  # the card can be reset or pulled between the connect and this status call
            self.atr = bytes(self._connection.getATR())
        except CardConnectionException as exc:
            self._connection.disconnect()
            raise CardRemovedError(f"the card in {reader_name!r} was reset or removed while "
                                   f"connecting: {exc}") from exc
        self._closed = False

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self._closed:
            raise TransportError("connection already closed")
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except CardConnectionException as exc:
            raise CardRemovedError(f"card in {self.reader_name!r} stopped answering: {exc}") from exc
        return bytes(data), (sw1 << 8) | sw2

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._connection.disconnect()  # with SCARD_UNPOWER_CARD (see connect)
        except CardConnectionException as exc:
            if getattr(exc, "hresult", None) in (scard.SCARD_W_REMOVED_CARD,
                                                 scard.SCARD_E_NO_SMARTCARD):
                log.debug("disconnect after card removal", exc_info=True)
            else:
                log.warning("could not power off the card in %r: %s", self.reader_name, exc)
        try:
            self._connection.release()
        except Exception:  # pyscard raises a variety of types when the context is gone
            log.debug("release failed", exc_info=True)

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


