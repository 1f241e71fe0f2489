"""The station service's wire protocol and request handling, in process over a
socketpair: framing limits, refused options, asks and answers, and a client that only
touches the paths its own command line names."""

from __future__ import annotations

import base64
import json
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.service import protocol
from tools.service.client import Client, may_touch, named_paths
from tools.service.protocol import ANSWER, RUN, Channel, ProtocolError
from tools.service.remote import refused_option, serve_request
from tools.station.caller import CURRENT_CALLER, CURRENT_TERMINAL, Caller, caller

OPERATOR = Caller(uid=1234, pid=99, via_service=True)


def pair() -> tuple[Channel, Channel]:
    left, right = socket.socketpair()
    return Channel(left), Channel(right)


def test_messages_are_nul_terminated_json_objects() -> None:
    client, service = pair()
    client.send({"method": RUN, "parameters": {"argv": ["verify"]}})
    raw = service.sock.recv(4096)
    assert raw.endswith(b"\0") and json.loads(raw[:-1]) == {"method": RUN,
                                                             "parameters": {"argv": ["verify"]}}


@pytest.mark.parametrize("garbage", [b"not json\0", b"[1, 2]\0", b"\xff\xfe\0"])
def test_malformed_messages_are_refused(garbage: bytes) -> None:
    client, service = pair()
    client.sock.sendall(garbage)
    with pytest.raises(ProtocolError):
        service.receive()


def test_an_oversized_message_is_refused_before_it_is_read_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_MESSAGE", 1000)
    client, service = pair()
    client.sock.sendall(b"x" * 70000)  # no terminator: the service must not wait forever
    with pytest.raises(ProtocolError, match="longer than"):
        service.receive()


def test_a_peer_closing_mid_call_is_a_protocol_error() -> None:
    client, service = pair()
    client.sock.sendall(b'{"method": "x"')
    client.sock.close()
    with pytest.raises(ProtocolError, match="closed"):
        service.receive()


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=40), max_size=5))
def test_any_json_object_round_trips(parameters: dict[str, str]) -> None:
    client, service = pair()
    client.send({"method": RUN, "parameters": parameters})
    assert service.receive() == {"method": RUN, "parameters": parameters}
    client.sock.close()
    service.sock.close()


@pytest.mark.parametrize("argv", [["--home", "/tmp/x", "verify"], ["--db=fake.sqlite", "verify"],
                                  ["-v", "--home=/elsewhere", "whoami"]])
def test_the_client_may_not_choose_the_station(argv: list[str]) -> None:
    assert refused_option(argv) in ("--home", "--db")


def serve_in_thread(run) -> tuple[Channel, threading.Thread]:  # type: ignore[no-untyped-def]
    client, service = pair()
    thread = threading.Thread(target=serve_request, args=(service, OPERATOR, Path("/srv/home"), run))
    thread.start()
    return client, thread


def collect(client: Channel, answers: list[dict] | None = None) -> list[dict]:
    replies, answers = [], list(answers or [])
    while True:
        message = client.receive()
        replies.append(message)
        if "ask" in message.get("parameters", {}):
            client.send({"method": ANSWER, "parameters": answers.pop(0)})
        if not message.get("continues"):
            return replies


def test_a_refused_option_runs_nothing() -> None:
    ran = []
    client, thread = serve_in_thread(lambda argv: ran.append(argv) or 0)
    client.send({"method": RUN, "parameters": {"version": 1, "argv": ["--db", "fake", "verify"]}})
    replies = collect(client)
    thread.join()
    assert ran == [] and replies[-1]["parameters"] == {"exit": 2}
    assert "--db is the station service's to choose" in replies[0]["parameters"]["stderr"]


def test_local_only_commands_are_not_served() -> None:
    ran = []
    client, thread = serve_in_thread(lambda argv: ran.append(argv) or 0)
    client.send({"method": RUN, "parameters": {"version": 1, "argv": ["rig", "up"]}})
    replies = collect(client)
    thread.join()
    assert ran == [] and replies[-1]["parameters"] == {"exit": 2}


def test_a_wrong_protocol_version_is_an_error() -> None:
    client, thread = serve_in_thread(lambda argv: 0)
    client.send({"method": RUN, "parameters": {"version": 99, "argv": ["verify"]}})
    reply = client.receive()
    thread.join()
    assert reply["error"] == protocol.PROTOCOL_ERROR and "version" in reply["parameters"]["message"]


def test_the_command_runs_on_the_service_home_for_the_kernel_caller() -> None:
    seen: dict = {}

    def run(argv: list[str]) -> int:
        import sys

        seen["argv"], seen["caller"] = argv, caller()
        seen["secret"] = CURRENT_TERMINAL.get().ask_secret("PIN", False)  # type: ignore[union-attr]
        seen["file"] = CURRENT_TERMINAL.get().read_file(Path("pins.txt"))  # type: ignore[union-attr]
        print("hello", file=sys.stdout)
        return 7

    client, thread = serve_in_thread(run)
    client.send({"method": RUN, "parameters": {"version": 1, "argv": ["whoami"], "uid": 0}})
    replies = collect(client, [{"value": "135792"},
                               {"data": base64.b64encode(b"x=1").decode(), "mode": 0o100600}])
    thread.join()
    assert seen["argv"] == ["--home", "/srv/home", "whoami"]
    assert seen["caller"] == OPERATOR  # a "uid" in the call is ignored: the kernel's counts
    assert seen["secret"] == "135792" and seen["file"].data == b"x=1"
    assert {"stdout": "hello"} in [r["parameters"] for r in replies]
    assert replies[-1]["parameters"] == {"exit": 7}
    CURRENT_CALLER.set(Caller(0, 0, False))


def test_the_client_touches_only_what_its_command_line_names(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text("content")
    (tmp_path / "secret").write_text("not yours")
    argv = ["card", "sign", "doc.txt", "--out=sig.p7s", "--reader", "0"]
    named = named_paths(argv)
    assert may_touch(tmp_path / "doc.txt", named) and may_touch(tmp_path / "sig.p7s", named)
    assert may_touch(tmp_path / "doc.txt.p7s", named)  # the default output beside FILE
    assert not may_touch(tmp_path / "secret", named)
    assert not may_touch(Path("/etc/shadow"), named)
    client = Client(Channel(socket.socketpair()[0]), argv)
    refused = client.answer({"kind": "read", "path": str(tmp_path / "secret")})
    assert "refuses" in refused["error"] and "data" not in refused
    written = client.answer({"kind": "write", "path": "/tmp/../etc/juki-test",
                             "data": base64.b64encode(b"x").decode()})
    assert "refuses" in written["error"] and not Path("/etc/juki-test").exists()
    read = client.answer({"kind": "read", "path": "doc.txt"})
    assert base64.b64decode(read["data"]) == b"content"


def test_the_client_touches_a_dump_directory_only_in_its_layout(tmp_path: Path) -> None:
    """`card dump --out DIR` / `card check --from DIR` through the service: DIR/<ap>/<id>.bin
    (found: refused, so a dump through the service failed after its provision was
    recorded), and nothing else below DIR's subdirectories, nor any other depth."""
    out = tmp_path / "dump"
    named = named_paths(["card", "dump", "--out", str(out), "--with", "pin"])
    assert may_touch(out / "card_info" / "0001.bin", named)
    assert may_touch(out / "common" / "0001.3.bin", named) and may_touch(out / "mf" / "00F8.bin",
                                                                        named)
    assert may_touch(out / "surface", named) and may_touch(out / "index.json", named)
    for other in (out / "card_info" / "notes.txt", out / "ssh" / "0001.bin",
                  out / "card_info" / "x" / "0001.bin", out / "card_info" / "0001.bin.bak",
                  tmp_path / "card_info" / "0001.bin", Path("/etc/card_info/0001.bin")):
        assert not may_touch(other, named), other
    client = Client(Channel(socket.socketpair()[0]), ["card", "check", "--from", str(out)])
    refused = client.answer({"kind": "read", "path": f"{out}/card_info/../../secret"})
    assert "refuses" in refused["error"]


def test_a_deeply_nested_message_is_a_protocol_error_not_a_crash() -> None:
    client, service = pair()
    sender = threading.Thread(target=client.sock.sendall,
                              args=(b"[" * 200_000 + b"]" * 200_000 + b"\0",))
    sender.start()  # more than a socket buffer: it is read while it is sent
    with pytest.raises(ProtocolError, match="sane depth"):
        service.receive()
    sender.join()


def test_a_silent_peer_times_out() -> None:
    _client, service = pair()
    with pytest.raises(ProtocolError, match="no message within"):
        service.receive(timeout=0.2)


@pytest.mark.parametrize(("argv", "refused"), [
    (["-vvv", "card", "read"], "-vvv"), (["-v", "-vv", "verify"], "-vvv"),
    (["--verbose", "-vv", "verify"], "-vvv"), (["-vv", "verify"], None), (["verify"], None)])
def test_the_apdu_trace_is_not_served_to_clients(argv: list[str], refused: str | None) -> None:
    assert refused_option(argv) == refused


def test_a_malformed_answer_ends_the_call_without_a_traceback_to_the_client() -> None:
    def run(argv: list[str]) -> int:
        CURRENT_TERMINAL.get().read_file(Path("pins.txt"))  # type: ignore[union-attr]
        return 0

    client, thread = serve_in_thread(run)
    client.send({"method": RUN, "parameters": {"version": 1, "argv": ["login"]}})
    ask = client.receive()
    assert ask["parameters"]["ask"]["kind"] == "read"
    client.send({"method": ANSWER, "parameters": {"data": ""}})  # no mode
    thread.join()
    client.sock.settimeout(2)
    rest = client.sock.recv(65536)
    assert b"Traceback" not in rest and b"exit" not in rest  # the call is abandoned
    CURRENT_CALLER.set(Caller(0, 0, False))


def test_the_pam_client_and_command_words_name_no_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert named_paths(["pam-auth", "--reader", "0", "--timeout", "5"]) == set()
    named = named_paths(["card", "sign", "doc.txt"])
    assert named == {tmp_path / "doc.txt"}  # not ./card, not ./sign
