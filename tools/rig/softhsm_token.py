"""The rig's test token: a SoftHSM token initialised for the rig's station home.

``softhsm2-util --init-token`` takes the PINs either as arguments (visible in
/proc/*/cmdline to every local user) or at its own hidden terminal prompt; the PINs are
answered on a pseudo-terminal by ``hsm.softhsm_slot.init_token`` (the station's TLS
token is made the same way), so they never appear in any argv.
"""

from __future__ import annotations

from pathlib import Path

from hsm.errors import HsmConfigError
from hsm.softhsm_slot import init_token as init_softhsm_token

from ..errors import RigError


def init_token(conf: Path, label: str, so_pin: str, user_pin: str) -> None:
    """Initialise the first free slot of the SoftHSM at ``conf`` as token ``label``; a
    failure is the rig's (RigError, with the tool's last line)."""
    try:
        init_softhsm_token(conf, label, so_pin, user_pin)
    except HsmConfigError as exc:
        raise RigError(str(exc)) from None
