"""Small data objects (CKO_DATA) kept in the token, found by label: what the project must
keep where a database cannot reach it (the provision log's head).

They are private token objects, so only a session logged in with the token PIN reads or
writes them. SoftHSM refuses to change CKA_VALUE after creation, so a write creates the
new object first and then destroys the older ones: a process killed in between leaves
two, and readers take every value and choose (never none).
"""

from __future__ import annotations

import pkcs11
from pkcs11 import Attribute, ObjectClass

from .token import Hsm

APPLICATION = "juki"


def _objects(session: pkcs11.Session, label: str) -> list[pkcs11.Object]:
    return list(session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}))


def read_data(hsm: Hsm, label: str) -> list[bytes]:
    """The values of every data object labelled ``label`` (normally one, or none)."""
    return hsm.call(lambda s: [bytes(o[Attribute.VALUE]) for o in _objects(s, label)])


def write_data(hsm: Hsm, label: str, value: bytes) -> None:
    """Make ``value`` the one data object labelled ``label``."""
    def write(session: pkcs11.Session) -> None:
        old = _objects(session, label)
        session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.TOKEN: True,
                               Attribute.PRIVATE: True, Attribute.MODIFIABLE: False,
                               Attribute.LABEL: label, Attribute.APPLICATION: APPLICATION,
                               Attribute.VALUE: value})
        for obj in old:
            obj.destroy()

    hsm.call(write)


def list_labels(hsm: Hsm, prefix: str) -> list[str]:
    """Labels of the project's data objects starting with ``prefix``."""
    def run(session: pkcs11.Session) -> list[str]:
        found = session.get_objects({Attribute.CLASS: ObjectClass.DATA})
        return sorted({str(o[Attribute.LABEL]) for o in found
                       if str(o[Attribute.LABEL]).startswith(prefix)})

    return hsm.call(run)
