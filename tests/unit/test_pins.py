import io
import os
from pathlib import Path

import pytest

from tools.errors import PinInputError
from tools.station.pins import CARD_INFO_PIN, Pin, collect_pins


def _file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "pins"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _no_prompt(_spec):  # type: ignore[no-untyped-def]
    raise AssertionError("must not prompt")


def test_pin_file(tmp_path: Path) -> None:
    pins = collect_pins([CARD_INFO_PIN], pin_file=_file(tmp_path, "# c\ncard_info=1234\n"),
                        stdin=io.StringIO(), stdin_is_tty=True, prompt=_no_prompt)
    assert pins["card_info"].reveal() == "1234"


def test_pin_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PinInputError, match="chmod 600"):
        collect_pins([CARD_INFO_PIN], pin_file=_file(tmp_path, "card_info=1234", 0o644),
                     stdin=io.StringIO(), stdin_is_tty=True, prompt=_no_prompt)


@pytest.mark.parametrize("value", ["123", "12345", "12a4", ""])
def test_pin_format_error_never_contains_the_pin(tmp_path: Path, value: str) -> None:
    with pytest.raises(PinInputError) as info:
        collect_pins([CARD_INFO_PIN], pin_file=_file(tmp_path, f"card_info={value}"),
                     stdin=io.StringIO(), stdin_is_tty=True, prompt=_no_prompt)
    assert "4 digits" in str(info.value)
    if value:
        assert value not in str(info.value)


def test_stdin_lines_when_not_a_tty() -> None:
    pins = collect_pins([CARD_INFO_PIN], pin_file=None, stdin=io.StringIO("4321\n"),
                        stdin_is_tty=False, prompt=_no_prompt)
    assert pins["card_info"].reveal() == "4321"
    with pytest.raises(PinInputError, match="stdin ended"):
        collect_pins([CARD_INFO_PIN], pin_file=None, stdin=io.StringIO(""),
                     stdin_is_tty=False, prompt=_no_prompt)


def test_prompt_on_a_tty() -> None:
    pins = collect_pins([CARD_INFO_PIN], pin_file=None, stdin=io.StringIO(), stdin_is_tty=True,
                        prompt=lambda spec: "0007")
    assert pins["card_info"].reveal() == "0007"


def test_pin_repr_is_redacted() -> None:
    pin = Pin("8642")
    assert "8642" not in repr(pin) and "8642" not in str(pin) and "8642" not in f"{[pin]}"


@pytest.mark.parametrize(("credential", "name", "good", "bad"), [
    ("pin", "card_info", "1234", "12345"),
    ("a", "collation_a", "537686677188", "53768667718"),
    ("b", "collation_b", "55021720352285", "5502172035228"),
])
def test_credentials_read_like_pins_and_never_leak(tmp_path: Path, credential: str, name: str,
                                                   good: str, bad: str) -> None:
    from tools.station.pins import CREDENTIALS

    spec = CREDENTIALS[credential]
    assert spec.name == name
    pins = collect_pins([spec], pin_file=_file(tmp_path, f"{name}={good}"),
                        stdin=io.StringIO(), stdin_is_tty=True, prompt=_no_prompt)
    assert pins[name].reveal() == good and good not in repr(pins[name])
    from_stdin = collect_pins([spec], pin_file=None, stdin=io.StringIO(good + "\n"),
                              stdin_is_tty=False, prompt=_no_prompt)
    assert from_stdin[name].reveal() == good
    with pytest.raises(PinInputError) as info:
        collect_pins([spec], pin_file=None, stdin=io.StringIO(bad + "\n"), stdin_is_tty=False,
                     prompt=_no_prompt)
    assert bad not in str(info.value)
