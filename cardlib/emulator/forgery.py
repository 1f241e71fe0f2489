"""Counterfeits for tests and the demo: a card that copies a genuine card's data but
holds different private keys (what a clone looks like: files can be read off a card,
private keys cannot)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .state import StateFile


def counterfeit_with_new_key(source: Path, destination: Path) -> str:
    """Copy ``source``'s card to ``destination`` with a fresh key in place of every
    private key it holds (共通AP 0019, the card-info AP's presence key 0013, the JPKI
    keys, ...). Returns the serial the counterfeit claims."""
    state = StateFile(source).load()
    for app in state.apps.values():
        for fid, pem in app.keys.items():
            if pem is None:
                continue
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            app.keys[fid] = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode("ascii")
    StateFile(destination).save(state)
    return state.serial
