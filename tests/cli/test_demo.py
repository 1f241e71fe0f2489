"""`juki demo` brings up and down a rig of its own, so it runs before the shared rig."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ..conftest import juki


@pytest.mark.own_rig
def test_demo_issues_verifies_reads_and_rejects_a_counterfeit(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    # the demo's station is one of its own (its own registry): a station must be enrolled
    # to use the suite's shared TLS registry
    result = juki(tmp_path / "unused", "demo", "--workdir", str(home), "--json", env={"JUKI_DB": ""})
    summary = json.loads(result.stdout)  # with --json: summary on stdout, narration on stderr
    serial = summary["card_serial"]
    assert len(serial) == 15 and serial.isdigit()
    assert summary["counterfeit_rejected_by"] == ["certificate", "presence"]
    assert summary["rig_left_running"] is False
    narration = result.stderr
    # steps 5 (online and --offline) and 8 (genuine), 7 the counterfeit --offline and 9
    # suspended (NOT GENUINE contains the phrase), 9 resumed
    assert narration.count(f"GENUINE: card {serial}") == 6
    assert "[skipped] registry_status: offline" in narration
    assert "7000033/001" in narration and "5000033/001" in narration  # trust list, chain
    assert '"genuine": false' in narration
    assert "name: 山田　太郎" in narration
    assert f"card {serial}: resident record code 28374650191" in narration
    assert summary["reissued_card_serial"] != serial
    assert f"card {serial}: active -> suspended" in narration
    assert f"{serial}: revoked superseded" in narration
    assert narration.count("NOT GENUINE: card") == 2  # the counterfeit offline (7), suspended (9)
    assert not (home / "rig" / "state.json").exists()  # rig brought down
    assert summary["operators_enrolled"] == ["admin01", "clerk01"]
    assert "clerk01 lacks the scope 'read-code'" in summary["scope_denial"]
    assert "logged in as clerk01" in narration and "clerk01 logged out" in narration
    assert f"GENUINE: card {summary['reissued_card_serial']}" in narration
    assert "juki card code: operator clerk01 lacks" in narration  # the admin's denial review
    # the edited row is the first provision (events of the issuance come before it)
    assert isinstance(summary["tampered_entry_detected"], int)
    assert f'"first_bad_index": {summary["tampered_entry_detected"]}' in narration
    # the moving story (issue 13)
    assert summary["moved"]["moved_to"] == "141003"
    assert "certificate revoked" in summary["moved"]["old_signature_certificate_refused"]
    assert "address: 神奈川県横浜市中区本町一丁目1番地" in narration
    assert "certs-after-move/sign.pem: OK" in narration
    assert "jpki-sign PIN reset" in narration
    assert "move-in (転入（特例転入）)" in narration  # 付随情報 from the 操作履歴
    assert "to NENKIN (日本年金機構) for B1-57" in narration  # the resident's report
    assert "provision log intact" in narration
    assert "本人確認情報の提供状況の開示" in Path(summary["disclosure_report"]).read_text()
    shown = result.stdout + narration
    for pin in ("4821", "5932", "JUKI2026", "672839", "90817263"):  # never printed
        # as a value of its own: digits inside a random GUID or serial are not a PIN
        assert not re.search(rf"(?<![0-9A-Za-z]){pin}(?![0-9A-Za-z])", shown), pin
