"""The images of the card surface (券面事項確認AP, RC §5.2), made at issuance.

- name and address: rendered from the request's text with a Japanese font (IPA Gothic,
  Debian ``fonts-ipafont-gothic``), 1-bit greyscale PNG;
- the individual number (EF 0005 DF41) and the security code (EF 0002 DF2A): 1-bit PNG,
  at four times the size surveyed on a real card (72×12 and 24×12 there: too small to
  read on a screen);
- the face photo (DF27): greyscale JPEG 2000 in a JP2 container, 240×320 (3:4, a card
  photo's shape), at most ``PHOTO_MAX_BYTES``; from the request's ``photo`` (a JPEG or
  PNG) or, without one, a plain placeholder: a grey silhouette with the codestream
  comment ``PLACEHOLDER_COMMENT`` that ``tools.resident.face.is_placeholder_photo``
  recognises.

Every image is deterministic: the same text or photo gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from ..errors import IssuanceError, RequestError

FONT_PATH = Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf")
FONT_PACKAGE = "fonts-ipafont-gothic"

NAME_SIZE = (480, 64)  # one line
ADDRESS_SIZE = (480, 144)  # up to three lines
ADDRESS_LINES = 3
NUMBER_SIZE = (288, 48)  # 4 × the 72×12 surveyed
CODE_SIZE = (96, 48)  # 4 × the 24×12 surveyed
NAME_MAX_BYTES, ADDRESS_MAX_BYTES = 4096, 8192  # so that the face fits its EF
MARGIN = 4
MIN_FONT_PX = 10

PHOTO_SIZE = (240, 320)
PHOTO_MAX_BYTES = 12 * 1024  # the JP2 written to the card (docs/resident-card.md sizes)
PHOTO_RATES = (12, 16, 24, 32, 48, 64, 96, 128)  # compression ratios tried in turn
PHOTO_INPUT_MAX_BYTES = 10 * 1024 * 1024  # the JPEG/PNG a request may name
PHOTO_INPUT_MAX_PIXELS = 40_000_000
PHOTO_INPUT_FORMATS = ("JPEG", "PNG")
PLACEHOLDER_COMMENT = b"juki placeholder photo v1"


def ensure_font() -> None:
    """``IssuanceError`` naming the font and its package when it is missing (checked
    before any card I/O of an issuance)."""
    if not FONT_PATH.is_file():
        raise IssuanceError(f"the Japanese font {FONT_PATH} is missing: install the Debian "
                            f"package {FONT_PACKAGE} (the card surface is rendered with it)")


def _font(size: int) -> ImageFont.FreeTypeFont:
    ensure_font()
    return ImageFont.truetype(str(FONT_PATH), size)


def _fitting_font(lines: list[str], width: int, height: int) -> ImageFont.FreeTypeFont:
    """The largest font whose ``lines`` fit ``width`` × ``height`` (less the margins)."""
    size = (height - 2 * MARGIN) // len(lines)
    while size > MIN_FONT_PX:
        font = _font(size)
        if all(font.getlength(line) <= width - 2 * MARGIN for line in lines):
            return font
        size -= 1
    return _font(MIN_FONT_PX)


def _png_1bit(image: Image.Image) -> bytes:
    """Threshold (no dithering) to mode 1 and encode: a PNG of bit depth 1, greyscale."""
    bilevel = image.point(lambda p: 255 if p >= 128 else 0).convert("1", dither=Image.Dither.NONE)
    out = io.BytesIO()
    bilevel.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _render(lines: list[str], size: tuple[int, int], center: bool = False) -> bytes:
    width, height = size
    font = _fitting_font(lines, width, height)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    line_height = (height - 2 * MARGIN) // len(lines)
    for index, line in enumerate(lines):
        x = (width - font.getlength(line)) / 2 if center else MARGIN
        draw.text((x, MARGIN + index * line_height + line_height / 2), line, font=font, fill=0,
                  anchor="lm")
    return _png_1bit(image)


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """``text`` split into at most ``lines`` lines that fit ``width`` at the font size of
    that many lines (characters, not words: Japanese addresses have no spaces)."""
    font = _font((ADDRESS_SIZE[1] - 2 * MARGIN) // lines)
    out: list[str] = [""]
    for char in text:
        if font.getlength(out[-1] + char) > width - 2 * MARGIN and len(out) < lines:
            out.append("")
        out[-1] += char
    return out


def name_image(name: str) -> bytes:
    """氏名 (DF25): one line, the font shrunk until the whole name fits."""
    return _bounded(_render([name], NAME_SIZE), NAME_MAX_BYTES, "name")


def address_image(address: str) -> bytes:
    """住所 (DF26): wrapped on up to three lines; shrunk if it still does not fit."""
    lines = _wrap(address, ADDRESS_SIZE[0], ADDRESS_LINES)
    return _bounded(_render(lines + [""] * (ADDRESS_LINES - len(lines)), ADDRESS_SIZE),
                    ADDRESS_MAX_BYTES, "address")


def _bounded(png: bytes, limit: int, what: str) -> bytes:
    if len(png) > limit:
        raise IssuanceError(f"the {what} image is {len(png)} bytes, more than {limit}")
    return png


def number_image(individual_number: str) -> bytes:
    """個人番号 (EF 0005 DF41): the 12 digits in groups of four, as printed on the card."""
    if len(individual_number) != 12 or not individual_number.isdigit():
        raise IssuanceError("the individual number image needs 12 digits")
    groups = " ".join(individual_number[i:i + 4] for i in range(0, 12, 4))
    return _render([groups], NUMBER_SIZE, center=True)


def security_code_image(code: str) -> bytes:
    """セキュリティコード (DF2A): the 4 digits."""
    if len(code) != 4 or not code.isdigit():
        raise IssuanceError("the security code image needs 4 digits")
    return _render([code], CODE_SIZE, center=True)


def check_photo(data: bytes, field: str = "photo") -> None:
    """A request's photo: a JPEG or PNG that decodes, of bounded size; else a
    ``RequestError`` naming ``field``."""
    if len(data) > PHOTO_INPUT_MAX_BYTES:
        raise RequestError(field, f"the image is too large ({len(data)} bytes; at most "
                                  f"{PHOTO_INPUT_MAX_BYTES})")
    _open_photo(data, field)


def _open_photo(data: bytes, field: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in PHOTO_INPUT_FORMATS:
            raise RequestError(field, f"must be a JPEG or PNG image, not {image.format}")
        if image.width * image.height > PHOTO_INPUT_MAX_PIXELS:
            raise RequestError(field, f"the image is too large ({image.width}×{image.height} "
                                      f"pixels; at most {PHOTO_INPUT_MAX_PIXELS})")
        image.load()
    except RequestError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise RequestError(field, "is not a readable JPEG or PNG image") from None
    return image


def _jp2(image: Image.Image, comment: bytes | None = None) -> bytes:
    """Greyscale JPEG 2000 in a JP2 container, the lightest compression that fits."""
    for rate in PHOTO_RATES:
        out = io.BytesIO()
        options = {"comment": comment} if comment else {}
        image.save(out, format="JPEG2000", no_jp2=False, irreversible=True,
                   quality_mode="rates", quality_layers=[rate], **options)
        if out.tell() <= PHOTO_MAX_BYTES:
            return out.getvalue()
    raise IssuanceError(f"the photo does not fit {PHOTO_MAX_BYTES} bytes as JPEG 2000")


def photo_jp2(data: bytes) -> bytes:
    """The request's JPEG/PNG as the card's photo: orientation applied, greyscale,
    centre-cropped to 3:4 and scaled to ``PHOTO_SIZE``."""
    image = ImageOps.exif_transpose(_open_photo(data, "photo"))
    grey = ImageOps.fit(image.convert("L"), PHOTO_SIZE, method=Image.Resampling.LANCZOS)
    return _jp2(grey)


def placeholder_photo() -> bytes:
    """No photo in the request: a plain grey head-and-shoulders silhouette on white,
    marked with ``PLACEHOLDER_COMMENT`` in the codestream."""
    width, height = PHOTO_SIZE
    image = Image.new("L", PHOTO_SIZE, 255)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.3, height * 0.15, width * 0.7, height * 0.5), fill=160)
    draw.ellipse((width * 0.1, height * 0.55, width * 0.9, height * 1.2), fill=160)
    draw.rectangle((0, 0, width - 1, height - 1), outline=96, width=3)
    return _jp2(image, PLACEHOLDER_COMMENT)
