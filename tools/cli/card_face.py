"""``juki card face``: the card surface (券面事項確認AP) as files, released only after the
card and its face have proven themselves and the provision is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .common import (
    authenticated_card,
    card_options,
    client_path,
    collect_cli_pins,
    emit,
    json_option,
    pin_file_option,
    presented,
    provision_release,
    purpose_option,
    recipient_option,
    record_provision,
    station,
    terminal,
    trust_store,
)

FACE_CREDENTIALS = ("a", "b", "dob")


@click.command("face")
@click.option("--out", "out_dir", type=client_path(), required=True,
              help="A new directory for the images and face.json (created 0700; an existing "
                   "one is refused).")
@click.option("--with", "credential", type=click.Choice(FACE_CREDENTIALS), default="a",
              show_default=True,
              help="照合番号A (pin file name collation_a: the face and the rendered number), "
                   "照合番号B (collation_b: the face) or the birth-date key (surface_birth_date: "
                   "the age record only); read like PINs, never from argv.")
@recipient_option
@purpose_option
@card_options
@pin_file_option
@json_option
def card_face(out_dir: Path, credential: str, recipient: str | None, purpose: str | None,
              reader: str | None, timeout: float, pin_file: Path | None, as_json: bool) -> None:
    """The card face: name, address and photo images, birth date, sex, expiry, the
    security-code image and (with 照合番号A) the rendered individual number. With A or B
    the card first proves itself like `juki verify --with a|b`; then the surface's own
    proof: EF 0004 chains to a trust anchor, DF28 verifies over the three digests, and
    the card key signs a fresh token challenge. Only then is the provision to
    --recipient for --purpose recorded and the files written."""
    from cardlib.apps.common import CommonApSession
    from cardlib.apps.surface import SurfaceApSession
    from hsm.verify import ChallengeBook

    from ..station.pins import FACE_CREDENTIALS as SPECS
    release = provision_release(recipient, purpose, required=True)
    spec = SPECS[credential]
    secret = collect_cli_pins([spec], pin_file, confirm=False)[spec.name]
    st = station()
    store = trust_store()
    anchors = store.anchors()
    try:
        terminal().make_dir(out_dir, private=True)
    except OSError as exc:
        raise click.UsageError(f"--out {out_dir}: must be a new directory ({exc})") from None
    with presented(reader, timeout) as (_name, channel):
        if credential == "dob":  # the card-info AP has no birth-date key: the surface alone
            common = CommonApSession(channel)
            common.select()
            serial: str | None = common.read_card_info().card_serial
        else:
            serial = authenticated_card(channel, release, (credential, secret), store)
        reading = _read_or_refuse(SurfaceApSession(channel), credential, secret.reveal(),
                                  anchors, ChallengeBook(st.hsm), release, serial)
        if credential == "dob":
            _refuse_a_false_claim(store, reading, release, serial)
    outputs = _outputs(reading)  # everything that can fail does so before the record
    entry = record_provision(release, reading.fields, serial)
    for name, data in outputs.items():
        terminal().write_file(out_dir / name, data)
    payload = reading.as_json() | {"card_serial": serial, "provision_entry": entry,
                                   "files": sorted(outputs)}
    emit(as_json, payload, lambda: "\n".join(
        [f"{k}: {v}" for k, v in payload.items() if k not in ("checks", "files")]
        + [f"check {name}: ok ({detail})" for name, detail in reading.checks]
        + [f"wrote {out_dir / name}" for name in sorted(outputs)]))


def _read_or_refuse(session, credential, secret, anchors, challenges, release, serial):  # type: ignore[no-untyped-def]
    """``read_face``; a face that fails a check is a recorded refusal and
    ``CardNotGenuineError`` (nothing is written)."""
    from ..audit.provision import record
    from ..errors import CardNotGenuineError
    from ..resident.face import FaceNotGenuineError, read_face

    try:
        return read_face(session, credential, secret, anchors, challenges)
    except FaceNotGenuineError as exc:
        st = station()
        record(st.registry, st.hsm, release, kind="refusal", fields=[], resident_id=None,
               record_code=None, card_serial=None,
               detail=f"card surface not genuine (failed {', '.join(n for n, _ in exc.failed)}); "
                      f"it claimed serial {serial or '?'}")
        raise CardNotGenuineError(serial, exc.failed) from None


def _refuse_a_false_claim(store, reading, release, serial) -> None:  # type: ignore[no-untyped-def]
    """--with dob proves the surface alone and names the serial the (unsigned) 共通AP
    record claims: a surface of another hierarchy claiming one of this station's serials
    is refused (every card we issue chains to a station anchor), as `juki verify` does."""
    from cardlib.cv_certificate import KeyId

    from ..audit.provision import record
    from ..errors import CardNotGenuineError

    info = store.info(KeyId.parse(reading.anchor).raw)
    st = station()
    if serial is None or (info is not None and info.source == "station") or \
            st.registry.get(serial) is None:
        return
    detail = f"claims serial {serial} of this station's registry, but its surface chain " \
             f"starts at anchor {reading.anchor}"
    record(st.registry, st.hsm, release, kind="refusal", fields=[], resident_id=None,
           record_code=None, card_serial=None, detail=f"card not genuine: {detail}")
    raise CardNotGenuineError(serial, [("card_record", detail)])


def _outputs(reading) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    from ..resident.face import photo_png

    files = reading.files()
    if "photo.jp2" in files:
        files["photo.png"] = photo_png(files["photo.jp2"])
    files["face.json"] = (json.dumps(reading.as_json(), ensure_ascii=False, indent=2)
                          + "\n").encode("utf-8")
    return files
