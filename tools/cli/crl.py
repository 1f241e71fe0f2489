"""``juki crl``: certificate revocation lists for relying parties outside the station."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .common import client_path, emit, json_option, station, terminal

MAX_NEXT_UPDATE_HOURS = 31 * 24


@click.group()
def crl() -> None:
    """Certificate revocation lists (one per issuing CA version, signed in the token)."""


@crl.command("publish")
@click.option("--out", "out_dir", type=client_path(), required=True,
              help="Directory for <role>-v<version>.crl (DER) and .crl.pem (created 0755).")
@click.option("--next-update-hours", type=click.IntRange(1, MAX_NEXT_UPDATE_HOURS), default=24,
              show_default=True, help="Hours until the CRLs' next update.")
@json_option
def crl_publish(out_dir: Path, next_update_hours: int, as_json: bool) -> None:
    """A new CRL of every CA version in the token (resident auth, resident signature,
    operator), each with a CRL number higher than the last, written into --out."""
    from ..pki.crl import publish_crls

    term = terminal()
    try:
        term.make_dir(out_dir)
    except OSError as exc:  # a file there (FileExistsError), or the client's refusal
        raise click.UsageError(f"--out {out_dir}: not a directory that can be made or used "
                               f"({exc.strerror or exc})") from None
    st = station()
    published = publish_crls(st.hsm, st.registry, dt.timedelta(hours=next_update_hours),
                             lambda name, data: term.write_file(out_dir / name, data))
    emit(as_json, {"out": str(out_dir), "crls": [p.as_json() for p in published]},
         lambda: "\n".join(f"{p.files[0]}: CRL number {p.number}, {p.entries} entries, next "
                           f"update {p.next_update}" for p in published))
