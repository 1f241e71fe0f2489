"""The disclosure report as text and as a printable A4 HTML page with Japanese labels
(the resident receives it on paper)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from .disclosure import DisclosureReport

FIELD_LABELS = {
    "name": "氏名", "birth_date": "生年月日", "sex": "性別", "address": "住所",
    "individual_number": "個人番号", "verification": "カードの真正性確認",
    "record_code": "住民票コード", "code_history": "住民票コードの変更履歴",
    "provision_record": "本人確認情報の提供状況",
    "signature_certificate": "署名用電子証明書（基本4情報を含む）",
}
KIND_LABELS = {"provision": "提供", "disclosure": "開示"}
EVENT_LABELS = {  # 付随情報: what changed, as the resident reads it
    "four-info-changed": "基本4情報の変更", "move-out": "転出（特例転出）",
    "move-in": "転入（特例転入）", "card-continued": "カードの継続利用",
    "move-lapsed": "継続利用の期限切れ", "move-cancelled": "転出の取消し",
    "move-expired": "転入届の期限切れ", "record-code-changed": "住民票コードの変更",
    "card-active": "カードの再交付",
}


def _detail(detail: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))


def incidental_text(entries: list[Mapping[str, Any]]) -> list[str]:
    """付随情報 lines (``audit self`` and the text report): date, event, reason, detail."""
    lines = ["付随情報 (changes to the 4 information and the record code):"]
    lines += [f"  {e['date']} {e['event']} ({EVENT_LABELS.get(e['event'], e['event'])})"
              f"{': ' + e['reason'] if e['reason'] else ''}"
              f"{'; ' + _detail(e['detail']) if e['detail'] else ''}; inclusion proof "
              f"{'verified' if e['proof_verified'] else 'FAILED'}" for e in entries]
    return lines if entries else [lines[0] + " none recorded"]


def local_time(iso: str) -> str:
    """``2026-11-27T22:10:08+09:00`` → ``2026-11-27 22:10``: what a resident reads."""
    return iso[:16].replace("T", " ")


def field_names(fields: list[str]) -> str:
    return "、".join(FIELD_LABELS.get(f, f) for f in fields)


def requester_text(requester: dict[str, str] | None) -> str:
    """Who asked for a disclosure, as the report says it (English, for the text form)."""
    if not requester:
        return ""
    if requester.get("kind") == "representative":
        return (f"; requested by legal representative {requester.get('name')} "
                f"(basis: {requester.get('basis')})")
    return f"; requested by the resident in person (card {requester.get('card_serial')})"


def requester_label(requester: dict[str, str] | None) -> str:
    """The same in Japanese, for the printed page."""
    if not requester:
        return ""
    if requester.get("kind") == "representative":
        return f"法定代理人 {requester.get('name')}（根拠: {requester.get('basis')}）"
    return f"本人（カード {requester.get('card_serial')} による本人確認）"


def as_text(report: DisclosureReport) -> str:
    lines = [f"provision status report: resident {report.resident_id}, record codes "
             f"{', '.join(report.record_codes)}",
             f"checkpoint: size {report.checkpoint['size']}, root {report.checkpoint['root']}, "
             f"{report.checkpoint['at']}, signature "
             f"{'valid' if report.checkpoint_signature_ok else 'INVALID'}"]
    for e in report.entries:
        lines.append(f"#{e.index} {e.time_local} {e.kind}: to {e.recipient} ({e.recipient_name}) "
                     f"for {e.purpose} ({e.purpose_description}): {', '.join(e.fields)}; "
                     f"code {e.record_code or '-'}{requester_text(e.requester)}; inclusion proof "
                     f"{'verified' if e.proof_verified else 'FAILED'}")
    if not report.entries:
        lines.append("no provisions recorded")
    lines += incidental_text([asdict(e) for e in report.incidental_information])
    return "\n".join(lines)


def incidental_html(report: DisclosureReport) -> str:
    e = html.escape
    rows = [f"<tr><td>{i.index}</td><td class=\"nowrap\">{e(i.date)}</td>"
            f"<td>{e(EVENT_LABELS.get(i.event, i.event))}<br><small>{e(i.event)}</small></td>"
            f"<td>{e(i.reason or '—')}</td><td>{e(_detail(i.detail) or '—')}</td>"
            f"<td>{'検証済' if i.proof_verified else '検証失敗'}</td></tr>"
            for i in report.incidental_information]
    body = "\n".join(rows) or '<tr><td colspan="6">変更の記録はありません</td></tr>'
    return f"""<h2>付随情報</h2>
<p>基本4情報（氏名・生年月日・性別・住所）と住民票コードの変更の日付と事由です。</p>
<table>
<thead><tr><th>番号</th><th>記録日</th><th>変更</th><th>事由</th><th>詳細</th>
<th>改ざん検知証明</th></tr></thead>
<tbody>
{body}
</tbody></table>"""


STYLE = """
@page { size: A4; margin: 18mm 14mm; }
body { font-family: "Noto Sans CJK JP", "IPAexGothic", sans-serif; font-size: 10pt; }
h1 { font-size: 15pt; margin: 0 0 4mm; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 0.3mm solid #444; padding: 1.2mm 1.6mm; vertical-align: top; }
th { background: #eee; white-space: nowrap; }
tr { page-break-inside: avoid; }
.meta td { border: none; padding: 0.5mm 2mm 0.5mm 0; }
.proof { font-family: monospace; font-size: 7pt; word-break: break-all; }
.nowrap { white-space: nowrap; }
footer { margin-top: 6mm; font-size: 8pt; }
"""


def as_html(report: DisclosureReport, issued_at: str, station: str) -> str:
    e = html.escape
    rows = []
    for entry in report.entries:
        rows.append(
            "<tr>"
            f"<td>{entry.index}</td><td class=\"nowrap\">{e(local_time(entry.time_local))}</td>"
            f"<td>{e(KIND_LABELS.get(entry.kind, entry.kind))}"
            + (f"<br><small>{e(requester_label(entry.requester))}</small>"
               if entry.requester else "") + "</td>"
            f"<td class=\"nowrap\">{e(entry.recipient_name)}<br><small>{e(entry.recipient)}</small></td>"
            f"<td>{e(entry.purpose_description)}<br><small>{e(entry.purpose)}</small></td>"
            f"<td>{e(field_names(entry.fields))}</td>"
            f"<td>{e(entry.record_code or '—')}</td>"
            f"<td>{'検証済' if entry.proof_verified else '検証失敗'}</td>"
            "</tr>")
    body = "\n".join(rows) or '<tr><td colspan="8">提供の記録はありません</td></tr>'
    checkpoint = report.checkpoint
    signature = "有効" if report.checkpoint_signature_ok else "無効"
    return f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8">
<title>本人確認情報の提供状況の開示</title><style>{STYLE}</style></head>
<body>
<h1>本人確認情報の提供状況の開示</h1>
<table class="meta">
<tr><td>住民票コード</td><td>{e("、".join(report.record_codes))}</td></tr>
<tr><td>交付日時</td><td>{e(issued_at)}</td></tr>
<tr><td>交付端末</td><td>{e(station)}</td></tr>
<tr><td>件数</td><td>{len(report.entries)} 件</td></tr>
</table>
<p>あなたの本人確認情報（以前の住民票コードによるものを含む）を、いつ、どの機関に、どの事務のために提供したかの記録です。</p>
<table>
<thead><tr><th>番号</th><th>提供日時</th><th>区分</th><th>提供先</th><th>利用事務（提供目的）</th>
<th>提供した情報</th><th>住民票コード</th><th>改ざん検知証明</th></tr></thead>
<tbody>
{body}
</tbody></table>
{incidental_html(report)}
<footer>
<p>記録の改ざん検知: 各記録の包含証明（RFC 6962 Merkle tree）をチェックポイント
（記録数 {checkpoint['size']}、{e(str(checkpoint['at']))}、
署名鍵 {e(str(checkpoint['key_label']))}、署名 {signature}）に対して検証しました。</p>
<p class="proof">root: {e(str(checkpoint['root']))}</p>
</footer>
</body></html>
"""
