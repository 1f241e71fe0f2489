"""Is a process still alive? Asked by the issuance recovery (is the station process
that began an issuance gone?) and by the rig (are the processes it started running?)."""

from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """True while ``pid`` exists and is not a zombie (a killed child not yet reaped is
    gone for every purpose here); a process of another user counts as alive."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().split(") ")[-1]
    except OSError:  # exited between the two looks
        return False
    return not state.startswith("Z")
