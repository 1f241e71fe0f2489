"""The trust store: the published anchors load and describe as RC §6.1 gives them, the
configured sets decide what is in force, extra anchors come from a checked file."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cardlib.cv_certificate import KeyId
from tests.helpers import RC_COPY_CHECKS
from tools.errors import StationConfigError
from tools.station.trust import TrustStore, load_extra


def _store(**trust: object) -> TrustStore:
    return TrustStore.from_settings({"trust": trust} if trust else {}, hsm=None)


def test_published_anchors_load_and_describe_as_rc_gives_them() -> None:
    store = _store(anchors=["jlis-production", "jpki-test"])
    described = {a.key_id: a for a in store.describe()}
    assert {k: a.modulus_sha256 for k, a in described.items()} == RC_COPY_CHECKS
    assert {a.hierarchy for k, a in described.items() if k.startswith("5")} == {"J-LIS production"}
    assert {a.source for k, a in described.items() if k.startswith("6")} == {"jpki-test"}
    anchors = store.anchors()
    root = KeyId.parse("5000020/001 (A8)").raw
    assert root[-1] == 0xA8 and anchors[root].public_numbers().e == 65537
    assert KeyId.parse("5000020/001").raw not in anchors  # all 16 bytes count


def test_default_sets_leave_out_the_test_hierarchy() -> None:
    keys = {a.key_id for a in _store().describe()}
    assert keys == {k for k in RC_COPY_CHECKS if k.startswith("5")}
    assert _store(anchors=[]).describe() == []


def test_unknown_set_is_refused() -> None:
    with pytest.raises(StationConfigError, match="unknown set"):
        _store(anchors=["jlis-production", "everything"])


def _extra(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "anchors.toml"
    path.write_text(body)
    return path


def _modulus() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, f"{key.public_key().public_numbers().n:0512X}"


def test_extra_anchors_file(tmp_path: Path) -> None:
    key, modulus = _modulus()
    path = _extra(tmp_path, f'[[anchor]]\nkey_id = "6100033/001"\nmodulus = "{modulus}"\n'
                            f'name = "test CA"\n')
    store = _store(anchors=[], extra=str(path))
    [info] = store.describe()
    assert (info.key_id, info.hierarchy, info.source, info.role) == (
        "6100033/001", "extra", str(path), "test CA")
    assert store.anchors()[KeyId.parse("6100033/001").raw].public_numbers() == \
        key.public_key().public_numbers()
    hex_id = KeyId.parse("6100034/001 (01)").raw.hex()
    again = load_extra(_extra(tmp_path, f'[[anchor]]\nkey_id = "{hex_id}"\nmodulus = "{modulus}"\n'))
    assert again[0].info.key_id == "6100034/001 (01)"


@pytest.mark.parametrize(("body", "problem"), [
    ('[[anchor]]\nkey_id = "61000/001"\nmodulus = "{m}"\n', "anchor 1: key_id"),
    ('[[anchor]]\nkey_id = "6100033/001"\nmodulus = "zz"\n', "modulus must be hex"),
    ('[[anchor]]\nkey_id = "6100033/001"\nmodulus = "0F"\n', "odd 2048-bit"),
    ('[[anchor]]\nkey_id = "6100033/001"\nmodulus = "{m}"\nexponent = 3\n', "65537"),
    ('anchor = 1\n', "expected [[anchor]]"),
    ('[[anchor]\n', "trust anchors file"),
])
def test_bad_extra_file_is_refused_naming_what(tmp_path: Path, body: str, problem: str) -> None:
    _, modulus = _modulus()
    with pytest.raises(StationConfigError, match=problem.replace("[", r"\[")) as info:
        _store(extra=str(_extra(tmp_path, body.replace("{m}", modulus))))
    assert "anchors.toml" in str(info.value)


def test_missing_extra_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StationConfigError, match=r"nothing\.toml"):
        _store(extra=str(tmp_path / "nothing.toml"))


def test_an_extra_anchor_cannot_replace_a_published_key(tmp_path: Path) -> None:
    _, modulus = _modulus()
    path = _extra(tmp_path, f'[[anchor]]\nkey_id = "5000033/001"\nmodulus = "{modulus}"\n')
    with pytest.raises(StationConfigError, match="given twice with different keys"):
        _store(extra=str(path))


def test_the_extra_anchors_file_is_checked_like_other_configured_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever can write the extra-anchors file decides which cards are genuine."""
    import os

    from tools.service.home_check import home_problems
    from tools.station.home import StationHome

    monkeypatch.delenv("JUKI_DB", raising=False)
    shared = tmp_path / "shared"
    shared.mkdir()
    anchors = shared / "anchors.toml"
    anchors.write_text("")
    os.chmod(anchors, 0o666)
    home = StationHome(tmp_path / "home")
    home.ensure()
    home.write_settings({"trust": {"anchors": ["station"], "extra": str(anchors)}})
    problems = "\n".join(home_problems(home, os.getuid()))
    assert "anchors.toml is writable by group or others" in problems
    os.chmod(anchors, 0o644)
    assert "anchors.toml" not in "\n".join(home_problems(home, os.getuid()))
