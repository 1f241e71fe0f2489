"""C2SP signed notes (c2sp.org/signed-note) carrying C2SP tlog-checkpoints
(c2sp.org/tlog-checkpoint), signed with Ed25519 (signature type 0x01).

A checkpoint body is ``<origin>\\n<tree size>\\n<base64 root hash>\\n`` plus our one
extension line (the signing time, ISO 8601 UTC). The signed note is the body, a blank
line, then one line per signature: ``— <key name> <base64(key ID ‖ signature)>``, the key
ID being the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key). A
witness (c2sp.org/tlog-cosignature) appends its own line; lines of unknown keys are
ignored when verifying, as the spec requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
ED25519_TYPE = b"\x01"
ED25519_SIGNATURE_BYTES = 64


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def body(origin: str, size: int, root: bytes, extensions: tuple[str, ...] = ()) -> str:
    return "".join(f"{line}\n" for line in
                   (origin, str(size), base64.b64encode(root).decode(), *extensions))


def signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    blob = base64.b64encode(key_id(name, public_key) + signature).decode()
    return f"{SIGNATURE_PREFIX}{name} {blob}\n"


@dataclass(frozen=True)
class Signature:
    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    text: str  # the signed text, ending in a newline
    signatures: tuple[Signature, ...]

    def serialise(self) -> str:
        lines = [f"{SIGNATURE_PREFIX}{s.name} "
                 f"{base64.b64encode(s.key_id + s.signature).decode()}\n" for s in self.signatures]
        return self.text + "\n" + "".join(lines)

    def verified_by(self, name: str, public_key: bytes) -> bool:
        """True if a signature line of key ``name`` with ``public_key`` verifies (the
        first line of that key decides, as in the spec's reference verifier)."""
        wanted = key_id(name, public_key)
        for sig in self.signatures:
            if sig.name == name and sig.key_id == wanted:
                try:
                    Ed25519PublicKey.from_public_bytes(public_key).verify(
                        sig.signature, self.text.encode("utf-8"))
                except InvalidSignature:
                    return False
                return True
        return False

    def checkpoint(self) -> tuple[str, int, bytes, tuple[str, ...]]:
        """(origin, size, root, extension lines) of a tlog-checkpoint body."""
        lines = self.text.split("\n")[:-1]
        if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1][0] == "0"):
            raise ValueError("not a tlog-checkpoint body")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except binascii.Error:
            raise ValueError("the root hash is not base64") from None
        if len(root) != 32:
            raise ValueError("the root hash is not 32 bytes")
        return lines[0], int(lines[1]), root, tuple(lines[3:])


def _signature(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise ValueError(f"not a signature line: {line[:40]!r}")
    name, _, blob = line[len(SIGNATURE_PREFIX):].rpartition(" ")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error:
        raise ValueError("a signature is not base64") from None
    if not name or len(raw) < 5:
        raise ValueError("a signature line has no key name or a short signature")
    return Signature(name, raw[:4], raw[4:])


def parse_notes(data: str) -> list[SignedNote]:
    """Every note of a file of signed notes, each followed by a blank line."""
    if any(ord(c) < 0x20 and c != "\n" for c in data):
        raise ValueError("control characters in the checkpoint file")
    notes, text, sigs, in_sigs = [], [], [], False
    for line in data.split("\n"):
        if not in_sigs:
            if line:
                text.append(line)
            elif text:
                in_sigs = True
        elif line:
            sigs.append(_signature(line))
        else:
            if not sigs:
                raise ValueError("a note without signatures")
            notes.append(SignedNote("".join(f"{t}\n" for t in text), tuple(sigs)))
            text, sigs, in_sigs = [], [], False
    if text or sigs:
        raise ValueError("the last note is incomplete")
    return notes
