"""The vpcd wire protocol, against a loopback socket standing in for vpcd."""

import socket
import threading

from cardlib.emulator import vpcd
from cardlib.emulator.profiles import blank_resident_card
from cardlib.emulator.resident_card_os import ResidentCardOs


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def _read_frame(sock: socket.socket) -> bytes:
    header = sock.recv(2, socket.MSG_WAITALL)
    return sock.recv(int.from_bytes(header, "big"), socket.MSG_WAITALL)


def test_control_bytes_atr_and_apdus() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    card = ResidentCardOs(blank_resident_card())
    link = vpcd.connect("127.0.0.1", port, timeout=5)
    thread = threading.Thread(target=vpcd.serve, args=(card, link), daemon=True)
    thread.start()
    peer, _ = server.accept()
    assert link.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    peer.sendall(_frame(b"\x01"))  # power on: no reply
    peer.sendall(_frame(b"\x04"))  # ATR request
    assert _read_frame(peer) == card.atr
    peer.sendall(_frame(bytes.fromhex("00a4040c08a000000151000000")))
    assert _read_frame(peer) == b"\x90\x00"
    peer.sendall(_frame(bytes.fromhex("80ca004500")))
    answer = _read_frame(peer)
    assert answer == card.state.serial.encode() + b"\x90\x00"  # ASCII, no TLV (RC §3)
    peer.sendall(_frame(b"\x02"))  # reset: no reply, no application selected
    peer.sendall(_frame(bytes.fromhex("00a40000")))
    assert _read_frame(peer) == b"\x6a\x86"  # SELECT MF: 6A86 in the power-on state
    peer.close()  # vpcd gone: the card's loop ends
    thread.join(timeout=5)
    assert not thread.is_alive()
    server.close()
