"""Batch issuance: many requests, one card per reader as blank cards are inserted.

Every line is validated first; a bad line is reported and skipped. One worker per
reader takes the next request when a blank card sits in its reader (the operator
swaps cards), so several readers issue at once; PKCS#11 calls stay serialised by
the process-wide lock, and each worker has its own registry connection."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cardlib import pcsc
from cardlib.errors import CardError
from hsm.errors import HsmError
from hsm.token import Hsm

from ..errors import JukiError, RequestError
from ..pki.issued import DEFAULT_CRL_BASE_URL
from ..registry import Registry
from ..station.pins import ResidentCardPins
from ..station.readers import blank_serial, open_card
from .request import IdentityRequest, parse_request, photo_reader, read_text_file
from .resident_card import issue_resident_card
from .security_code import SecurityCode

log = logging.getLogger(__name__)


@dataclass
class BatchLine:
    line: int
    status: str  # rejected | issued | failed | not-issued
    card_serial: str | None = None
    reader: str | None = None
    detail: str = ""
    request: IdentityRequest | None = None
    security_code: SecurityCode | None = None  # said once, in this answer (card face)

    def as_json(self) -> dict[str, object]:
        answer: dict[str, object] = {"line": self.line, "status": self.status,
                                     "card_serial": self.card_serial, "reader": self.reader,
                                     "detail": self.detail}
        if self.security_code is not None:
            answer["card_face"] = {"security_code": self.security_code.reveal()}
        return answer


def parse_batch(path: Path, read: Callable[[Path], bytes] = Path.read_bytes) -> list[BatchLine]:
    """One line per request; a line that is not a valid request is ``rejected``."""
    lines, read_photo = [], photo_reader(path, read)
    for number, text in enumerate(read_text_file(path, read).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            request = parse_request(json.loads(text), read_photo)
        except json.JSONDecodeError as exc:
            lines.append(BatchLine(number, "rejected", detail=f"malformed JSON: {exc.msg}"))
            continue
        except RecursionError:  # found by tests/fuzz (batch_file): [[[[… a thousand deep
            lines.append(BatchLine(number, "rejected", detail="malformed JSON: nested too deeply"))
            continue
        except RequestError as exc:
            lines.append(BatchLine(number, "rejected", detail=str(exc)))
            continue
        lines.append(BatchLine(number, "not-issued", request=request))
    return lines


def _wait_for_blank(reader: str, used: set[str], deadline: float) -> str | None:
    """A blank card's serial in ``reader`` (not one this batch already saw), or None."""
    while time.monotonic() < deadline:
        present = {s.name for s in pcsc.reader_states() if s.card_present}
        if reader in present:
            serial = blank_serial(reader)
            if serial and serial not in used:
                return serial
        time.sleep(0.1)
    return None


def run_batch(lines: list[BatchLine], readers: list[str], hsm: Hsm, registry_at: Path | str,
              pins: ResidentCardPins, timeout: float,
              progress: Callable[[BatchLine], None] = lambda _line: None,
              crl_base_url: str = DEFAULT_CRL_BASE_URL) -> list[BatchLine]:
    todo: queue.Queue[BatchLine] = queue.Queue()
    for line in lines:
        if line.status == "not-issued":
            todo.put(line)
    used: set[str] = set()
    lock = threading.Lock()

    def worker(reader: str) -> None:
        registry = Registry(registry_at)
        try:
            while True:
                try:
                    line = todo.get_nowait()
                except queue.Empty:
                    return
                serial = _wait_for_blank(reader, used, time.monotonic() + timeout)
                if serial is None:
                    line.detail = f"no blank card in {reader} within {timeout:g} s"
                    todo.put(line)  # another reader may still get a card
                    return
                with lock:
                    used.add(serial)
                assert line.request is not None
                try:
                    with open_card(reader) as channel:
                        issued = issue_resident_card(channel, hsm, registry, line.request, pins,
                                                     crl_base_url=crl_base_url)
                    line.status, line.card_serial = "issued", issued.card_serial
                    line.security_code = issued.security_code
                    line.detail = f"expires {issued.expiry}"
                except (CardError, HsmError, JukiError) as exc:
                    line.status, line.card_serial = "failed", serial
                    line.detail = str(exc) or type(exc).__name__
                except Exception as exc:  # a bug or an environment fault: report, go on
                    log.exception("batch line %d on %s", line.line, reader)
                    line.status, line.card_serial = "failed", serial
                    line.detail = f"{type(exc).__name__}: {exc}"
                line.reader = reader
                progress(line)
        finally:
            registry.close()

    threads = [threading.Thread(target=worker, args=(r,), name=f"batch {r}") for r in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return lines
