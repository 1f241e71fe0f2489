"""Issue 11, defects 3a/3b/3c and 9, as attacks on a real registry (SQLite and, with
JUKI_TEST_POSTGRES, PostgreSQL) and the real SoftHSM token: each is now detected and
named. Also: the checkpoint file is C2SP signed notes that verify with the token's
Ed25519 key, and the token head follows every append."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hsm import eddsa
from hsm.roles import KeyRole
from tests.tamper import tampering
from tools.audit import anchors, log, note
from tools.audit.checkpoints import make_checkpoint
from tools.audit.provision import Release, record
from tools.audit.verify import verify_log
from tools.errors import LogTamperedError
from tools.registry import Registry

RELEASE = Release("station-a", "Asia/Tokyo", "op-1", "NENKIN", "B1-57")


def fill(registry: Registry, hsm, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    for i in range(start, start + count):
        record(registry, hsm, RELEASE, kind="provision", fields=["name"], resident_id=i % 3,
               record_code=None, card_serial=f"{i:015d}")


def test_checkpoint_file_holds_c2sp_notes_and_the_token_head_follows_appends(
        registry: Registry, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "audit" / "checkpoints"
    fill(registry, hsm, 5)
    db = registry.connection()
    head = anchors.read_head(hsm, db)
    assert head is not None and (head.size, head.root) == (5, log.root(db, 5))
    checkpoint = make_checkpoint(registry, hsm, notes)
    fill(registry, hsm, 2, start=5)
    assert anchors.read_head(hsm, db).size == 7  # type: ignore[union-attr]
    make_checkpoint(registry, hsm, notes)
    assert stat.S_IMODE(notes.stat().st_mode) == 0o600
    text = notes.read_text(encoding="utf-8")
    first = text.split("\n\n")[0] + "\n"
    origin = anchors.origin(db)
    assert first == f"{origin}\n5\n{base64.b64encode(checkpoint.root).decode()}\n{checkpoint.at}\n"
    sig_line = text.split("\n\n")[1]
    assert sig_line.startswith(f"\u2014 {origin} ")
    blob = base64.b64decode(sig_line.rsplit(" ", 1)[1])
    public = eddsa.public_keys(hsm, KeyRole.AUDIT_NOTE_SIGNER)[1]
    assert blob[:4] == note.key_id(origin, public) and len(blob) == 4 + 64
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], first.encode())  # raises if not
    assert [n.checkpoint()[1] for n in note.parse_notes(text)] == [5, 7]
    assert verify_log(db, hsm, notes).ok


@pytest.mark.parametrize("moved_to", [None, 2])
def test_3a_moving_resident_id_is_named_by_verify_and_refused_by_disclosure(
        registry: Registry, station, tmp_path: Path, moved_to: int | None) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 6)
    make_checkpoint(registry, hsm, notes)
    # the attack: hide entry 4 from resident 1, or give it to 2
    with registry.transaction() as db, tampering(db):
        db.execute("UPDATE provision_log SET resident_id = ? WHERE idx = 4", (moved_to,))
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok and verdict.first_bad_index == 4
    assert f"resident_id column says {moved_to}" in (verdict.problem or "")
    assert "signed entry says 1" in (verdict.problem or "")
    with pytest.raises(LogTamperedError, match="entry 4 names resident 1"):
        log.entries_of_resident(registry.connection(), 1)
    if moved_to is not None:
        with pytest.raises(LogTamperedError, match="entry 4"):
            log.entries_of_resident(registry.connection(), moved_to)


def test_3b_deleting_entries_after_the_last_checkpoint_is_named(
        registry: Registry, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 5)
    make_checkpoint(registry, hsm, notes)
    fill(registry, hsm, 4, start=5)
    assert verify_log(registry.connection(), hsm, notes).ok
    with registry.transaction() as db, tampering(db):  # the attack: drop the 3 newest entries and their nodes
        db.execute("DELETE FROM provision_log WHERE idx >= 6")
        db.execute("DELETE FROM merkle_nodes WHERE position >= 6 AND level = 0")
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok and verdict.first_bad_index == 6
    assert "truncated" in (verdict.problem or "") and "token's head" in (verdict.problem or "")
    assert "entries 6..8 deleted" in (verdict.problem or "")


def test_3c_deleting_entries_and_checkpoints_is_named(registry: Registry, station,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 4)
    make_checkpoint(registry, hsm, notes)
    fill(registry, hsm, 4, start=4)
    make_checkpoint(registry, hsm, notes)
    with registry.transaction() as db, tampering(db):  # the attack: back to 3 entries, no checkpoints at all
        db.execute("DELETE FROM provision_log WHERE idx >= 3")
        db.execute("DELETE FROM audit_checkpoints")
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok
    assert "checkpoint of size 4" in (verdict.problem or "")
    assert "missing from the database (checkpoints deleted)" in (verdict.problem or "")
    notes.unlink()  # even without the file, the token's head names the truncation
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok and verdict.first_bad_index == 3
    assert "token's head (size 8)" in (verdict.problem or "")


def test_a_note_in_the_checkpoint_file_not_signed_by_the_token_is_named(
        registry: Registry, station, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hsm, notes = station.hsm, tmp_path / "checkpoints"
    fill(registry, hsm, 3)
    make_checkpoint(registry, hsm, notes)
    text = notes.read_text(encoding="utf-8")
    body, sig = text.split("\n\n")[:2]
    name, blob = sig[2:].rsplit(" ", 1)
    raw = base64.b64decode(blob)
    forged = raw[:4] + bytes(64)
    notes.write_text(f"{body}\n\n\u2014 {name} {base64.b64encode(forged).decode()}\n\n",
                     encoding="utf-8")
    verdict = verify_log(registry.connection(), hsm, notes)
    assert not verdict.ok and "not signed by this token" in (verdict.problem or "")


PIN_SCRIPT = """
import json, sys
from pathlib import Path
import pkcs11
from tools.station.home import StationHome, softhsm_token_dir
from tools.rig.rig import Rig

home = StationHome(Path(sys.argv[2]))
step = sys.argv[1]
if step == "init":
    Rig(home).ensure_token()
    home.open_token().call(lambda s: None)
elif step == "change":
    home.change_token_pin("new-pin-1234")
elif step == "change-raw":  # an administrator's C_SetPIN, then the PIN file by hand
    config = home.token_config()
    home.open_token().call(lambda s: s.set_pin(config.read_pin(), "new-pin-1234"))
    config.pin_file.write_text("new-pin-1234\\n")
elif step == "truncate":  # a login killed while SoftHSM rewrote token.object
    conf = home.token_config().softhsm2_conf
    for token in softhsm_token_dir(conf).iterdir():
        (token / "token.object").write_bytes(b"")
elif step == "open":
    try:
        home.open_token().call(lambda s: None)
        print(json.dumps({"opened": True}))
    except Exception as exc:
        print(json.dumps({"opened": False, "error": str(exc)}))
elif step == "try":  # log in with a given PIN, bypassing the station
    config = home.token_config()
    import os
    os.environ["SOFTHSM2_CONF"] = str(config.softhsm2_conf)
    lib = pkcs11.lib(config.module)
    try:
        lib.get_token(token_label=config.token_label).open(user_pin=sys.argv[3]).close()
        print(json.dumps({"login": True}))
    except (pkcs11.PKCS11Error, RuntimeError) as exc:
        print(json.dumps({"login": False, "error": type(exc).__name__}))
"""


def _step(home: Path, *args: str) -> dict[str, object]:
    from tests.conftest import ROOT

    out = subprocess.run([sys.executable, "-c", PIN_SCRIPT, args[0], str(home), *args[1:]],
                         capture_output=True, text=True, cwd=ROOT, timeout=120, check=True)
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def test_9_a_token_pin_change_is_never_undone_by_the_repair(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _step(home, "init")
    old = (home / "secrets" / "token.pin").read_text().strip()
    _step(home, "change")
    _step(home, "truncate")
    assert _step(home, "open") == {"opened": True}  # repaired from the copy: the NEW PIN
    assert _step(home, "try", "new-pin-1234") == {"login": True}
    assert _step(home, "try", old)["login"] is False


def test_9_a_copy_older_than_an_outside_pin_change_is_not_restored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _step(home, "init")
    old = (home / "secrets" / "token.pin").read_text().strip()
    _step(home, "change-raw")  # not through the station: its copy still has the old PIN
    _step(home, "truncate")
    opened = _step(home, "open")
    assert opened["opened"] is False and "predates a PIN change" in str(opened["error"])
    assert _step(home, "try", old)["login"] is False  # the old PIN did not come back
    tokens = list((home / "softhsm" / "tokens").iterdir())
    assert all(os.path.getsize(t / "token.object") == 0 for t in tokens)
