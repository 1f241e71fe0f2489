"""Changing a resident's record code at their request: a new random code (CSPRNG,
valid check digit, never used by anyone), written on the card over SCP03 with the
change record, the old code retired for good. Registry first (reserve), card second,
registry last (commit); a failed card write abandons the reserved code forever."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cardlib.apps.resident_registry import open_registry
from cardlib.channel import ApduChannel
from hsm.diversify import KeySet, card_keys
from hsm.token import Hsm

from ..registry import Registry, RegistryError
from ..station.card_keys import token_prfs
from .record_code import card_serial


@dataclass(frozen=True)
class CodeChanged:
    card_serial: str
    old_code: str
    new_code: str
    date: dt.date
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"card_serial": self.card_serial, "old_code": self.old_code,
                "new_code": self.new_code, "date": self.date.isoformat(), "reason": self.reason}


def change_record_code(channel: ApduChannel, hsm: Hsm, registry: Registry, current: str,
                       reason: str, today: dt.date | None = None) -> CodeChanged:
    serial = card_serial(channel)
    card = registry.get(serial)
    owner = registry.resident_of_code(current)
    if owner is None or owner[1] != "active":
        raise RegistryError(f"record code {current} is not an active code")
    if card is None or card.resident_id != owner[0] or card.status not in ("active", "suspended"):
        raise RegistryError(f"the card in the reader ({serial}) is not a live card of the "
                            f"resident with code {current}")
    date = today or dt.date.today()
    resident, new_code = registry.reserve_new_code(current)
    try:
        with card_keys(hsm, serial, KeySet.RESIDENT_REGISTRY) as keys:
            ap = open_registry(channel, token_prfs(keys))
            if ap.read_code() != current:
                raise RegistryError(f"card {serial} holds another record code than {current}")
            ap.change_code(new_code, date, reason)
    except BaseException:
        registry.abandon_code(new_code)
        raise
    registry.commit_code_change(resident, current, new_code, reason)
    return CodeChanged(serial, current, new_code, date, reason)
