"""Finding and opening the card a command should work on.

One PC/SC connection per command flow, exclusive so that no other host interleaves
APDUs with a personalisation or a verification.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cardlib import pcsc
from cardlib.apps.base import ApplicationSession
from cardlib.apps.issuer import IssuerInfo, IssuerSession
from cardlib.channel import ApduChannel
from cardlib.constants import Aid, LifeCycle
from cardlib.errors import ApduError, CardDataError, CardError, NoCardError, ReaderBusyError


@dataclass(frozen=True)
class ReaderReport:
    name: str
    card_present: bool
    atr: str
    applications: list[str]
    profile: str | None
    card_serial: str | None
    life_cycle: str | None

    def as_json(self) -> dict[str, object]:
        return dict(vars(self))


PROBED_APPLICATIONS = (Aid.COMMON, Aid.CARD_INFO, Aid.JPKI, Aid.RESIDENT_REGISTRY, Aid.PIV)


def probe(channel: ApduChannel) -> tuple[list[str], IssuerInfo | None]:
    """Which applications answer SELECT by AID, and the issuer info if there is an ISD."""
    found = []
    for aid in PROBED_APPLICATIONS:
        try:
            ApplicationSession(channel, aid).select()
        except ApduError:
            continue
        found.append(aid.name)
    issuer = IssuerSession(channel)
    try:
        issuer.select()
        return found, issuer.read_info()
    except (ApduError, CardDataError):
        return found, None


def profile_of(applications: list[str]) -> str | None:
    if "COMMON" in applications and "CARD_INFO" in applications:
        return "resident"
    if "PIV" in applications:
        return "operator (PIV)"
    if "JPKI" in applications:
        return "individual-number card (JPKI)"
    return None


def describe_readers() -> list[ReaderReport]:
    reports = []
    for state in pcsc.reader_states():
        applications: list[str] = []
        info = None
        if state.card_present:
            try:
                with pcsc.PcscTransport(state.name) as transport:
                    applications, info = probe(ApduChannel(transport))
            except CardError:
                pass
        reports.append(ReaderReport(
            name=state.name,
            card_present=state.card_present,
            atr=state.atr.hex(),
            applications=applications,
            profile=profile_of(applications),
            card_serial=info.card_serial if info is not None else None,
            life_cycle=info.life_cycle.name if info is not None else None,
        ))
    return reports


def blank_serial(name: str) -> str | None:
    """The serial of the blank (OP_READY) card in reader ``name``, else None."""
    try:
        with pcsc.PcscTransport(name) as transport:
            issuer = IssuerSession(ApduChannel(transport))
            issuer.select()
            info = issuer.read_info()
    except (CardError, CardDataError):
        return None
    return info.card_serial if info.life_cycle == LifeCycle.OP_READY else None


def first_reader_holding(accepts: Callable[[str], object], timeout: float, what: str) -> str:
    """The first reader whose card ``accepts`` (by name), waiting up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        for state in pcsc.reader_states():
            if state.card_present and accepts(state.name):
                return state.name
        if time.monotonic() >= deadline:
            raise NoCardError(f"no {what} in any reader within {timeout:g} s "
                              "(give --reader to choose one)")
        time.sleep(pcsc.POLL_INTERVAL_S * 4)


def choose_reader(wanted: str | None, timeout: float, *, blank: bool = False) -> str:
    """The reader to use: ``wanted`` if given; else the first holding a (blank) card,
    waiting up to ``timeout`` seconds for one to be presented."""
    if wanted is not None or not blank:
        return pcsc.wait_for_card(wanted, timeout)
    return first_reader_holding(blank_serial, timeout, "blank card")


def holds_piv_card(name: str) -> bool:
    try:
        with pcsc.PcscTransport(name) as transport:
            ApplicationSession(ApduChannel(transport), Aid.PIV).select()
    except CardError:
        return False
    return True


def choose_piv_reader(wanted: str | None, timeout: float) -> str:
    """``wanted`` if given; else the first reader holding a PIV (operator) card."""
    if wanted is not None:
        return pcsc.wait_for_card(wanted, timeout)
    return first_reader_holding(holds_piv_card, timeout, "operator (PIV) card")


BUSY_RETRY_S = 3.0


def connect_exclusive(reader: str, patience: float = BUSY_RETRY_S) -> pcsc.PcscTransport:
    """An exclusive connection; another application's short look at the card (a shared
    connection) makes us wait up to ``patience`` seconds, not fail."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return pcsc.PcscTransport(reader, exclusive=True)
        except ReaderBusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def open_card(reader: str) -> Iterator[ApduChannel]:
    transport = connect_exclusive(reader)
    try:
        yield ApduChannel(transport)
    finally:
        transport.close()


CARD_KINDS = ("any", "blank", "operator")


@contextmanager
def presented_card(wanted: str | None, timeout: float, *,
                   kind: str = "any") -> Iterator[tuple[str, ApduChannel]]:
    """The reader this command works on and an exclusive channel to its card: ``wanted``
    if given, else the first reader holding a card of ``kind`` (any card, a blank card,
    an operator's PIV card), waiting up to ``timeout`` seconds for one."""
    if kind not in CARD_KINDS:
        raise ValueError(f"card kind {kind!r} is not one of {CARD_KINDS}")
    if kind == "operator":
        name = choose_piv_reader(wanted, timeout)
    else:
        name = choose_reader(wanted, timeout, blank=kind == "blank")
    with open_card(name) as channel:
        yield name, channel

