"""The test rig: it stands for the physical world (pcscd with virtual readers, cards
inserted and pulled) and for the card maker (blank emulated cards and the test token).
Only ``tools.cli.rig`` imports it, and only it imports ``cardlib.emulator``."""

from cardlib.emulator.vpcd import FIRST_VPCD_PORT

__all__ = ["FIRST_VPCD_PORT"]
