"""GlobalPlatform SCP03 (Card Specification v2.2 Amendment D), host and card sides.

``kdf`` is the NIST SP 800-108 counter-mode KDF with AES-CMAC; ``keys`` the session
key schedule and cryptograms; ``wrapping`` the per-command C-MAC/C-DEC and per-response
R-MAC/R-ENC processing shared by both sides; ``host`` opens a session over a transport
and is itself a transport; ``card`` is the card's state machine.
"""

from .wrapping import SecurityLevel

__all__ = ["SecurityLevel"]
