"""The mark of a rig's test token.

The test rig plays the card maker: it reads derived key values out of the token to load
them into blank virtual cards. That export must never happen on a production token. The
rig marks a token it initialised itself with a private data object (``TEST_TOKEN_LABEL``,
not modifiable); ``derivation.export_for_card_maker`` refuses any token without that
mark. A production token, made by its owner and set up by `juki hsm init`, never
carries it: nothing but the rig's own token initialisation writes it.
"""

from __future__ import annotations

import pkcs11
from pkcs11 import Attribute, ObjectClass

from .errors import HsmError
from .token import Hsm

TEST_TOKEN_LABEL = "juki/rig/test-token"
TEST_TOKEN_VALUE = b"juki test rig token: derived keys may be exported to emulated cards"


def _marks(session: pkcs11.Session) -> list[pkcs11.Object]:
    return list(session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                     Attribute.LABEL: TEST_TOKEN_LABEL}))


def mark_test_token(hsm: Hsm) -> None:
    """Mark ``hsm`` as a rig's test token (the rig calls this right after it initialised
    the token; idempotent)."""
    def mark(session: pkcs11.Session) -> None:
        if not _marks(session):
            session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                                   Attribute.PRIVATE: True, Attribute.MODIFIABLE: False,
                                   Attribute.LABEL: TEST_TOKEN_LABEL,
                                   Attribute.APPLICATION: "juki", Attribute.VALUE: TEST_TOKEN_VALUE})

    hsm.call(mark)


def is_test_token(hsm: Hsm) -> bool:
    return hsm.call(lambda session: bool(_marks(session)))


def require_test_token(hsm: Hsm) -> None:
    """Raise ``HsmError`` unless ``hsm`` is a rig's test token."""
    if not is_test_token(hsm):
        raise HsmError(f"token {hsm.config.token_label!r} is not a test rig's token (no {TEST_TOKEN_LABEL!r} "
                       "object): the card maker's key export is refused; a rig makes and "
                       "marks a test token of its own (`juki rig up` on a new home)")
