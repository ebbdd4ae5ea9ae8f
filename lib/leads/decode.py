"""Bytes -> text for CSV uploads: refuse binary files, find the encoding, say what was guessed.

The order (see docs/lead-files.md): a byte-order mark; UTF-16 without one; strict UTF-8;
then the single-byte encodings lead lists are really saved in (Windows, Latin-9, Mac, Central European,
DOS), judged by how the decoded text looks (`lib.leads.encoding_score`); a multi-byte or non-Latin
encoding only when the file's non-ASCII bytes come in long runs, as words of those scripts do and the
odd accent in an English list does not. When the runner-up reads close to the winner and gives other
text, the result says so and carries the cells that differ under each.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field

import charset_normalizer

from lib.leads.common import LeadFileError, cap_text
from lib.leads.decode_types import EncodingCandidate
from lib.leads.encoding_score import score_text

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

# Single-byte encodings of Latin-script lead lists, in order of preference on a tie.
LATIN_CANDIDATES = ("cp1252", "iso8859-15", "mac_roman", "cp1250", "cp850")

LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16 (Excel 'Unicode Text')",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32": "UTF-32",
    "cp1252": "Windows Western (cp1252, Excel on Windows)",
    "iso8859-15": "Latin-9 (ISO-8859-15)",
    "mac_roman": "Mac Roman (Excel for Mac 'CSV (Macintosh)')",
    "cp1250": "Windows Central European (cp1250)",
    "cp850": "DOS Western (cp850)",
    "latin-1": "Latin-1 (ISO-8859-1)",
}

# Encodings charset-normalizer may name for non-Latin text; accepted only on strong evidence.
_NON_LATIN = {
    "cp1251", "koi8_r", "koi8_u", "cp866", "mac_cyrillic", "iso8859_5",
    "cp1253", "iso8859_7", "cp1255", "iso8859_8", "cp1256", "iso8859_6", "cp874", "tis_620",
    "cp932", "shift_jis", "euc_jp", "iso2022_jp", "gb2312", "gbk", "gb18030", "big5", "big5hkscs",
    "cp949", "euc_kr", "johab", "cp950", "utf_16", "utf_32",
}  # fmt: skip

_SAMPLE = 64 * 1024
# Runner-up within this many points of the winner (about one accented letter's worth) is "close".
CLOSE_MARGIN = 1.5
PREVIEW_CELLS = 8
_HIGH = re.compile(rb"[\x80-\xff]+")
_ASCII = bytes(range(128))


@dataclass
class Decoded:
    text: str
    encoding: str
    detected: str
    warnings: list[str] = field(default_factory=list)
    candidates: list[EncodingCandidate] = field(default_factory=list)
    uncertain: bool = False


def label(name: str) -> str:
    return LABELS.get(name, name)


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
            f"'{encoding}' is not an encoding this app knows. Try utf-8, cp1252 (Windows), mac_roman "
            "(Excel for Mac), utf-16 or latin-1."
        ) from None
    except UnicodeDecodeError as exc:
        raise LeadFileError(
            f"The file can't be read as {encoding}: byte 0x{data[exc.start]:02x} on line "
            f"{_line_of(data, exc.start)} is not valid in that encoding. Choose another encoding "
            "(Windows Excel files are usually cp1252, Excel for Mac mac_roman), or "
            + SAVE_AS_CSV[0].lower()
            + SAVE_AS_CSV[1:]
        ) from None


def _high_lines(data: bytes) -> list[tuple[int, bytes]]:
    """(1-based line, raw line) of lines with non-ASCII bytes, up to _SAMPLE bytes of them."""
    out: list[tuple[int, bytes]] = []
    taken, pos, line, counted = 0, 0, 1, 0
    sep = b"\r" if b"\n" not in data[:_SAMPLE] and b"\r" in data[:_SAMPLE] else b"\n"
    while taken < _SAMPLE:
        m = _HIGH.search(data, pos)
        if m is None:
            break
        start = data.rfind(sep, 0, m.start()) + 1
        end = data.find(sep, m.end())
        end = len(data) if end < 0 else end
        line += data.count(sep, counted, start)
        counted = start
        out.append((line, data[start:end].rstrip(b"\r")))
        taken += end - start
        pos = end + 1
    return out


def _long_runs(lines: list[tuple[int, bytes]]) -> bool:
    """Most non-ASCII bytes sit in runs of 3 or more: words of a non-Latin script, not stray accents."""
    runs = [len(m.group()) for _, raw in lines for m in _HIGH.finditer(raw)]
    total = sum(runs)
    return total > 0 and sum(r for r in runs if r >= 3) >= 0.5 * total


def _cells(line: str) -> list[str]:
    """Rough split of one line into cells for the preview (any common separator)."""
    for sep in (",", ";", "\t", "|"):
        if sep in line:
            try:
                return next(csv.reader(io.StringIO(line), delimiter=sep))
            except (csv.Error, StopIteration):
                return line.split(sep)
    return [line]


def _previews(lines: list[tuple[int, bytes]], names: list[str]) -> dict[str, list[tuple[int, str]]]:
    """For each encoding, the cells (line, text) whose text differs between the encodings."""
    out: dict[str, list[tuple[int, str]]] = {n: [] for n in names}
    for number, raw in lines:
        decoded = [_cells(raw.decode(n, errors="replace")) for n in names]
        if len({tuple(d) for d in decoded}) == 1:
            continue
        for pos in range(max(len(d) for d in decoded)):
            texts = [d[pos] if pos < len(d) else "" for d in decoded]
            if len(set(texts)) > 1:
                for n, t in zip(names, texts, strict=True):
                    out[n].append((number, cap_text(t, 60)))
        if len(out[names[0]]) >= PREVIEW_CELLS:
            break
    return {n: v[:PREVIEW_CELLS] for n, v in out.items()}


def _decodes(data: bytes, name: str) -> bool:
    try:
        data.decode(name)
        return True
    except UnicodeDecodeError:
        return False


def guess_legacy(data: bytes) -> Decoded:
    """Encoding for bytes that are not UTF-8: the Latin candidate whose text looks most like words."""
    lines = _high_lines(data)
    sample = b"\n".join(raw for _, raw in lines)
    scored: list[tuple[float, int, str, str]] = []
    for order, name in enumerate(LATIN_CANDIDATES):
        try:
            text = sample.decode(name)
        except UnicodeDecodeError:
            continue
        scored.append((score_text(text), -order, name, text))
    # Excel for Mac ends lines with CR alone: a hint worth about one accented letter.
    if b"\r" in data[:_SAMPLE] and b"\n" not in data[:_SAMPLE]:
        scored = [(s + 1.5 if n == "mac_roman" else s, o, n, t) for s, o, n, t in scored]
    scored.sort(reverse=True)
    warnings: list[str] = []
    if _long_runs(lines):
        best = charset_normalizer.from_bytes(sample[:_SAMPLE]).best()
        guess = best.encoding if best is not None else None
        # Latin names put one or two accented letters in a word; runs of three or more are words of
        # another script, so here (and only here) a non-Latin or multi-byte guess is taken.
        if guess in _NON_LATIN and _decodes(data, guess):
            return Decoded(
                data.decode(guess),
                guess,
                guess,
                [
                    f"The file is not UTF-8; it was read as {guess}. If the text looks wrong, choose the file's encoding."
                ],
            )
    # Full-file check: a candidate can decode the sample but not a later byte (cp1252 leaves 5 undefined).
    # Single-byte codecs fail only on a byte value, so the distinct high bytes of the file decide.
    present = bytes(sorted(set(data.translate(None, _ASCII))))
    usable = [(s, n, t) for s, _, n, t in scored if _decodes(present, n)]
    if not usable:
        return Decoded(
            data.decode("latin-1"),
            "latin-1",
            "latin-1",
            ["The file is not UTF-8 and fits none of the usual encodings; it was read as latin-1. "
             "If accented letters look wrong, choose the file's encoding."],
        )  # fmt: skip
    # Candidates reading the same text as a better one are no real alternative.
    distinct: list[tuple[float, str, str]] = []
    for s, n, t in usable:
        if all(t != other for _, _, other in distinct):
            distinct.append((s, n, t))
    names = [n for _, n, _ in distinct]
    previews = _previews(lines, names) if len(names) > 1 else {names[0]: []}
    candidates = [EncodingCandidate(n, label(n), round(s, 2), previews[n]) for s, n, _ in distinct]
    best_score, best_name = distinct[0][0], distinct[0][1]
    uncertain = len(distinct) > 1 and distinct[1][0] > best_score - CLOSE_MARGIN
    if uncertain:
        other = candidates[1]
        pairs = [
            f"line {line:,}: {a!r} or {b!r}"
            for (line, a), (_, b) in zip(candidates[0].preview, other.preview, strict=False)
            if a != b
        ][:3]
        warnings.append(
            f"The file is not UTF-8 and its encoding is not certain: it was read as {label(best_name)}, "
            f"but {label(other.name)} is almost as likely. The cells that differ: {'; '.join(pairs)}. "
            "Check them and choose the encoding if they look wrong."
        )
    else:
        warnings.append(
            f"The file is not UTF-8; it was read as {label(best_name)}. "
            "If accented letters look wrong, choose the file's encoding."
        )
    return Decoded(data.decode(best_name), best_name, best_name, warnings, candidates, uncertain)


def decode(data: bytes, filename: str, encoding: str | None) -> Decoded:
    """Decode the upload; `encoding` forces a codec (the detected one and the candidates are still given)."""
    if encoding:
        bom = _bom_encoding(data)
        # A forced "utf-8" on a BOM file would leave U+FEFF glued to the first column name.
        if bom and bom[0] == "utf-8-sig" and _codec_name(encoding) == "utf-8":
            encoding = "utf-8-sig"
        text = _decode_strict(data, encoding)
        try:
            detected = _detect(data, filename)
        except LeadFileError:
            detected = None
        out = Decoded(text, encoding, detected.detected if detected else encoding)
        if detected is not None:
            out.candidates = detected.candidates
    else:
        out = _detect(data, filename)
    if "\x00" in out.text:
        # Stray NULs come from broken exports or padding; they are invisible and break prompts.
        count = out.text.count("\x00")
        out.text = out.text.replace("\x00", "")
        out.warnings.append(f"Removed {count:,} invisible NUL characters (usually left by a broken export).")
    return out


def _detect(data: bytes, filename: str) -> Decoded:
    if bom := _bom_encoding(data):
        return Decoded(_decode_strict(data, bom[0]), bom[0], bom[0])
    if name16 := _bomless_utf16(data):
        return Decoded(_decode_strict(data, name16), name16, name16)
    refuse_binary(data, filename)
    # Text has no NULs (a stray one is removed later); compressed or binary data has one in 256 bytes.
    if data[:_SAMPLE].count(0) > 8:
        raise LeadFileError(
            f"This doesn't look like a CSV file: '{filename}' contains binary data. " + SAVE_AS_CSV
        )
    try:
        return Decoded(data.decode("utf-8"), "utf-8", "utf-8")
    except UnicodeDecodeError:
        return guess_legacy(data)
