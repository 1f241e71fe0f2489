"""Counterfeits for tests and the demo: a card that copies a genuine card's data but
holds a different private key (what a cloned card without the key would look like)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..constants import Aid, CommonFile
from .state import StateFile


def counterfeit_with_new_key(source: Path, destination: Path) -> str:
    """Copy ``source``'s card to ``destination`` with a fresh authentication key.

    Returns the serial the counterfeit claims."""
    state = StateFile(source).load()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state.apps[Aid.COMMON.hex()].keys[f"{CommonFile.AUTH_KEY:04X}"] = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode("ascii")
    StateFile(destination).save(state)
    return state.serial
