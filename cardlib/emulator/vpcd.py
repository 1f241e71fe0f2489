"""Attach a virtual card to pcscd through the vsmartcard vpcd reader driver.

vpcd is the TCP server (one port per virtual reader); the card is the client. Every
frame is a 2-byte big-endian length and a payload, both ways. A one-byte payload from
vpcd is control: 00 power off, 01 power on, 02 reset (no reply), 04 "send the ATR".
Anything longer is a C-APDU, answered with the R-APDU. The card must never send an
empty frame (vpcd would then block the reader), and must keep delayed ACKs off or
each APDU stalls ~40 ms.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rig's CLI reads FIRST_VPCD_PORT at start-up: keep this import light
    from .card_core import CardOs

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
FIRST_VPCD_PORT = 35963
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4
CLONE_NEWNET = 0x40000000


def enter_network_namespace(path: str | Path) -> None:
    """Join the network namespace at ``path`` (the rig keeps vpcd off the real network)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot enter network namespace {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """Connect to vpcd, retrying until it listens or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    if not payload:
        raise ValueError("a card must never send an empty frame to vpcd")
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


def serve(card: CardOs, sock: socket.socket) -> None:
    """Answer vpcd until it closes the connection."""
    while True:
        header = _recv_exact(sock, 2)
        if header is None:
            return
        payload = _recv_exact(sock, int.from_bytes(header, "big"))
        if payload is None:
            return
        if len(payload) == 1:
            control = payload[0]
            if control == CTRL_ATR:
                _send_frame(sock, card.atr)
            elif control == CTRL_OFF:
                card.power_off()
            elif control == CTRL_ON:
                card.power_on()
            elif control == CTRL_RESET:
                card.reset()
            else:
                log.warning("unknown vpcd control byte %02X", control)
            continue
        _send_frame(sock, card.process_apdu(payload))
