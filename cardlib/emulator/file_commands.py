"""File commands of the resident card OS: READ BINARY (current EF or short EF id),
UPDATE BINARY and ERASE BINARY (personalisation and the counter session), READ RECORD
and UPDATE RECORD (record EFs).

real-card.md §2.1: every EF of every AP is in 0001–001E, so its SFI is its low byte; an
SFI read makes the EF current; an Le past the end returns the rest (9000), an offset past
the end answers 6B00; internal EFs answer 6981."""

from __future__ import annotations

from ..apdu import CommandApdu
from ..status import SW, CardStatus
from .card_core import CardCore
from .state import FILLER, NEVER, FileState

SFI_FLAG = 0x80
SFI_MASK = 0x1F
RECORD_ABSOLUTE = 0x04  # READ RECORD P2 b3-b1: record number in P1
RECORD_MULTIPLE = 0x05  # "from P1 to the last": not provided (JICSAP: 6A81)


class FileCommands(CardCore):
    def _file_by_sfi(self, sfi: int) -> FileState:
        files = self._app().files
        fid = f"{sfi:04X}"
        if not 1 <= sfi <= 0x1E or fid not in files:
            raise CardStatus(SW.FILE_NOT_FOUND)
        self.ram.selected_fid = fid  # the EF becomes current
        return files[fid]

    def _check_read(self, entry: FileState, *, records: bool) -> None:
        if entry.read == NEVER:
            raise CardStatus(SW.COMMAND_INCOMPATIBLE)
        if entry.is_record_ef != records:
            raise CardStatus(SW.COMMAND_INCOMPATIBLE)
        if not entry.opened_by(self.ram.verified):
            raise CardStatus(SW.SECURITY_STATUS_NOT_SATISFIED)

    def _read_binary(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 & SFI_FLAG:
            if apdu.p1 & 0x60:
                raise CardStatus(SW.INCORRECT_P1P2)
            entry, offset = self._file_by_sfi(apdu.p1 & SFI_MASK), apdu.p2
        else:
            entry, offset = self._selected_file(), (apdu.p1 << 8) | apdu.p2
        self._check_read(entry, records=False)
        content = entry.content
        if offset >= len(content):
            raise CardStatus(SW.WRONG_P1P2)
        return content[offset : offset + (apdu.ne or 256)]

    def _binary_target(self, apdu: CommandApdu) -> tuple[FileState, int]:
        """The current transparent EF of a write and the offset P1P2 (15 bits)."""
        self._require_writable()
        entry = self._selected_file()
        if entry.is_record_ef:
            raise CardStatus(SW.COMMAND_INCOMPATIBLE)
        offset = (apdu.p1 << 8) | apdu.p2
        if apdu.p1 & 0x80 or offset > len(entry.content):
            raise CardStatus(SW.WRONG_P1P2)
        return entry, offset

    def _write_content(self, entry: FileState, content: bytes) -> None:
        kept, entry.data = entry.data, content.hex()
        self._save_or_restore(lambda: setattr(entry, "data", kept))

    def _update_binary(self, apdu: CommandApdu) -> bytes:
        entry, offset = self._binary_target(apdu)
        content = entry.content
        end = offset + len(apdu.data)
        if entry.size is not None and end > entry.size:
            raise CardStatus(SW.NOT_ENOUGH_MEMORY)
        self._write_content(entry, content[:offset] + apdu.data + content[end:])
        return b""

    def _erase_binary(self, apdu: CommandApdu) -> bytes:
        """ERASE BINARY ``00 0E P1P2`` (ISO 7816-4, no data): the current EF from offset
        P1P2 to its end back to the ``FF`` filler (a growing EF is cut there)."""
        if apdu.data:
            raise CardStatus(SW.WRONG_LENGTH)
        entry, offset = self._binary_target(apdu)
        content = entry.content
        tail = bytes((FILLER,)) * (len(content) - offset) if entry.size is not None else b""
        self._write_content(entry, content[:offset] + tail)
        return b""

    def _record_target(self, apdu: CommandApdu) -> FileState:
        """The EF of a record command: P2 ``04`` = current EF, ``sfi<<3 | 04`` = by SFI."""
        mode, sfi = apdu.p2 & 0x07, apdu.p2 >> 3
        if mode == RECORD_MULTIPLE:
            raise CardStatus(SW.FUNCTION_NOT_SUPPORTED)
        if mode != RECORD_ABSOLUTE or apdu.p1 == 0 or sfi == 0x1F:
            raise CardStatus(SW.INCORRECT_P1P2)
        return self._file_by_sfi(sfi) if sfi else self._selected_file()

    def _read_record(self, apdu: CommandApdu) -> bytes:
        entry = self._record_target(apdu)
        self._check_read(entry, records=True)
        records = entry.records or []
        if apdu.p1 > len(records) or not records[apdu.p1 - 1]:
            raise CardStatus(SW.RECORD_NOT_FOUND)
        return bytes.fromhex(records[apdu.p1 - 1])[: apdu.ne or 256]

    def _update_record(self, apdu: CommandApdu) -> bytes:
        """Personalisation (ours): create or replace record P1 of the current record EF;
        on an issued card only in the counter session (共通AP 0001 record 1)."""
        self._require_writable()
        if apdu.p2 != RECORD_ABSOLUTE or apdu.p1 == 0:
            raise CardStatus(SW.INCORRECT_P1P2)
        entry = self._selected_file()
        if entry.records is None:
            raise CardStatus(SW.COMMAND_INCOMPATIBLE)
        if not apdu.data:
            raise CardStatus(SW.WRONG_LENGTH)
        records, kept = entry.records, list(entry.records)
        records.extend([""] * (apdu.p1 - len(records)))
        records[apdu.p1 - 1] = apdu.data.hex()
        self._save_or_restore(lambda: setattr(entry, "records", kept))
        return b""
