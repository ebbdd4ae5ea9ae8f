"""Bytes -> text for CSV uploads: refuse binary files, find the encoding, say what was guessed."""

from __future__ import annotations

import codecs

import charset_normalizer

from lib.leads.common import LeadFileError

SAVE_AS_CSV = (
    "Open it in Excel and use File > Save As > 'CSV UTF-8 (Comma delimited)', then upload that file."
)

# Magic numbers of files people upload by mistake (or rename to .csv).
_MAGIC: list[tuple[bytes, str]] = [
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel .xls file or a password-protected workbook"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
]

# Encodings charset-normalizer may name for non-Latin text, where its guess beats our cp1252 default.
# For Latin text it often says cp1250 or mac_roman for what Excel wrote as cp1252, so we ignore those.
_NON_LATIN = {
    "cp1251", "koi8_r", "koi8_u", "cp866", "mac_cyrillic", "iso8859_5",
    "cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "tis_620",
    "cp932", "shift_jis", "euc_jp", "iso2022_jp", "gb2312", "gbk", "gb18030", "big5", "big5hkscs",
    "cp949", "euc_kr", "johab", "cp950",
}  # fmt: skip

_SAMPLE = 64 * 1024


def refuse_binary(data: bytes, filename: str) -> None:
    """Raise quickly for files that are not text at all (images, zips, old .xls, executables)."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            hint = (
                "If it is an Excel workbook, rename it to end in .xlsx and upload it again."
                if magic.startswith(b"PK")
                else SAVE_AS_CSV
            )
            raise LeadFileError(f"This doesn't look like a CSV file: '{filename}' is {what}. {hint}")


def _bom_encoding(data: bytes) -> tuple[str, int] | None:
    """(codec, BOM length) when the data starts with a byte-order mark."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return name, len(bom)
    return None


def _bomless_utf16(data: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when ASCII-heavy text shows NULs in every other byte."""
    sample = data[: 4096 - 4096 % 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def _line_of(data: bytes, pos: int) -> int:
    """1-based line of a byte offset (counting LF, or CR for old Mac files)."""
    head = data[:pos]
    return max(head.count(b"\n"), head.count(b"\r")) + 1


def _codec_name(encoding: str) -> str | None:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def _decode_strict(data: bytes, encoding: str) -> str:
    """Decode or explain where the file stops matching the chosen encoding."""
    try:
        return data.decode(encoding)
    except LookupError:
        raise LeadFileError(
            f"'{encoding}' is not an encoding this app knows. Try utf-8, cp1252 (Windows), utf-16 or latin-1."
        ) from None
    except UnicodeDecodeError as exc:
        raise LeadFileError(
            f"The file can't be read as {encoding}: byte 0x{data[exc.start]:02x} on line "
            f"{_line_of(data, exc.start)} is not valid in that encoding. Choose another encoding "
            "(Windows Excel files are usually cp1252), or " + SAVE_AS_CSV[0].lower() + SAVE_AS_CSV[1:]
        ) from None


def _guess_legacy(data: bytes) -> str:
    """Encoding for non-UTF-8 bytes: cp1252 (Excel on Windows) unless the text is clearly non-Latin."""
    # Only lines with non-ASCII bytes carry signal, and charset-normalizer is slow on big inputs.
    lines = [ln for ln in data[: 4 * _SAMPLE].splitlines() if max(ln, default=0) > 127]
    sample = b"\n".join(lines)[:_SAMPLE]
    best = charset_normalizer.from_bytes(sample).best() if sample else None
    if best is not None and best.encoding in _NON_LATIN:
        try:
            data.decode(best.encoding)
            return best.encoding
        except UnicodeDecodeError:
            pass
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    if best is not None:
        try:
            data.decode(best.encoding)
            return best.encoding
        except UnicodeDecodeError:
            pass
    # latin-1 maps every byte, so this never fails; the warning tells the user to check accents.
    return "latin-1"


def decode(data: bytes, filename: str, encoding: str | None) -> tuple[str, str, list[str]]:
    """Return (text, encoding name, warnings); `encoding` forces a codec."""
    warnings: list[str] = []
    if encoding:
        bom = _bom_encoding(data)
        # A forced "utf-8" on a BOM file would leave U+FEFF glued to the first column name.
        if bom and bom[0] == "utf-8-sig" and _codec_name(encoding) == "utf-8":
            encoding = "utf-8-sig"
        text, name = _decode_strict(data, encoding), encoding
    elif bom := _bom_encoding(data):
        name = bom[0]
        text = _decode_strict(data, name)
    elif name16 := _bomless_utf16(data):
        name = name16
        text = _decode_strict(data, name)
    else:
        refuse_binary(data, filename)
        head = data[:_SAMPLE]
        # Text has no NULs (a stray one is removed below); compressed or binary data has one in 256 bytes.
        if head.count(0) > 8:
            raise LeadFileError(
                f"This doesn't look like a CSV file: '{filename}' contains binary data. " + SAVE_AS_CSV
            )
        try:
            text, name = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            name = _guess_legacy(data)
            text = data.decode(name)
            warnings.append(
                f"The file is not UTF-8; it was read as {name}"
                + (" (Excel on Windows)" if name == "cp1252" else "")
                + ". If accented letters look wrong, choose the file's encoding."
            )
    if "\x00" in text:
        # Stray NULs come from broken exports or padding; they are invisible and break prompts.
        count = text.count("\x00")
        text = text.replace("\x00", "")
        warnings.append(f"Removed {count:,} invisible NUL characters (usually left by a broken export).")
    return text, name, warnings
