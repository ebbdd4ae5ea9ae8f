"""CSV text -> LeadFile: delimiter, header line, preamble and footer, ragged rows."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from lib.leads.common import LeadFile, LeadFileError, Limits, RejectedLine, cap_text, plural
from lib.leads.decode import decode
from lib.leads.header import find_header
from lib.leads.report_lines import footer_start, set_aside_lines, set_aside_warning
from lib.leads.table import build_table, mode_count

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
# Separators some tools write that sniffing does not try first: taken only when the usual ones find a
# single column and the candidate splits nearly every line into the same number of fields.
UNUSUAL_DELIMITERS = (":", "~", "+", "^")
# URLs, times and phone numbers carry ':' and '+' without separating anything.
_NOT_A_SEPARATOR = re.compile(r"://|\d:\d|(?:^|[\s(])\+\d")
# Delimiter sniffing and the quick width check look at this much text and at most this many records.
SAMPLE_CHARS = 64 * 1024
SAMPLE_RECORDS = 1000
# Rejected lines listed in an error message; the exception carries all of them.
SHOWN_LINES = 5

Record = tuple[int, int, list[str]]  # first physical line, last physical line, fields


def records(text: str, delimiter: str) -> Iterator[Record]:
    """Parse CSV records with the physical lines each one spans (quoted newlines make records span lines)."""
    # newline="" splits lines on \n, \r\n and \r without translating them, as the csv module expects,
    # so quoted line breaks reach the cell unchanged and line_num matches what an editor shows.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    prev = 0
    try:
        for fields in reader:
            yield prev + 1, reader.line_num, fields
            prev = reader.line_num
    except csv.Error as exc:
        # The only error left with strict=False is a field over csv.field_size_limit(): a runaway quote.
        raise LeadFileError(
            f'Line {prev + 1:,}: a value is far too long ({exc}). This usually means a quote (") opened '
            "on that line is never closed. Fix the quote in the file and upload it again."
        ) from None


def is_blank(fields: Sequence[str]) -> bool:
    """An empty line, or a row whose every cell is empty or spaces (Excel writes ',,,,' for these)."""
    return not "".join(fields).strip()


def _sample_stats(sample: str, truncated: bool, delimiter: str) -> tuple[int, int, int]:
    """(dominant field count, records with it, widest record) over the sample."""
    recs = [f for _, _, f in records(sample, delimiter)]
    widest = max((len(f) for f in recs), default=0)
    if truncated and len(recs) > 1:
        recs.pop()  # cut mid-record by the sample boundary
    counts = [len(f) for f in recs if not is_blank(f)][:SAMPLE_RECORDS]
    m = mode_count(counts)
    return m, (counts.count(m) if m > 1 else 0), widest


def sniff(text: str, delimiter: str | None, limits: Limits) -> tuple[str, list[str]]:
    """Pick the delimiter whose field count is consistent over the most records; refuse absurd widths early.

    Returns the delimiter and warnings (an unusual separator taken, or one column where one may hide).
    """
    sample, truncated = text[:SAMPLE_CHARS], len(text) > SAMPLE_CHARS
    warnings: list[str] = []
    if delimiter is None:
        best = (-1, -1)
        for cand in DELIMITERS:
            m, freq, _ = _sample_stats(sample, truncated, cand)
            # One field per record says nothing about a candidate, however often it occurs.
            key = (freq, m if m > 1 else 0)
            if key > best:
                best, delimiter = key, cand
        if best[1] <= 1:
            unusual, consistent = _unusual_delimiter(sample)
            if unusual and consistent:
                delimiter = unusual
                warnings.append(
                    f"The columns are separated by {unusual!r}, an unusual separator; check that the columns "
                    "look right."
                )
            elif unusual:
                warnings.append(f"One column found; the file may be separated by {unusual!r}.")
    assert delimiter is not None
    m, _, widest = _sample_stats(sample, truncated, delimiter)
    # A header line of 300,000 columns is refused here, before the whole file is parsed.
    width = m if m > 1 else widest
    if width > limits.max_columns:
        raise LeadFileError(
            f"The file has more than {limits.max_columns:,} columns (at least {width:,} at its start); "
            f"the limit is {limits.max_columns:,}. Delete the columns you don't need, or check that this "
            "is really a lead list."
        )
    return delimiter, warnings


def _unusual_delimiter(sample: str) -> tuple[str | None, bool]:
    """(separator, consistent): the unusual character on most lines, and whether its count never varies."""
    lines = [ln for ln in sample.splitlines()[:SAMPLE_RECORDS] if ln.strip()]
    if len(lines) < 2:
        return None, False
    cleaned = [_NOT_A_SEPARATOR.sub("", ln) for ln in lines]
    best: tuple[float, str | None, bool] = (0.0, None, False)
    for cand in UNUSUAL_DELIMITERS:
        counts = [ln.count(cand) for ln in cleaned]
        share = sum(1 for c in counts if c) / len(counts)
        if share < 0.5:
            continue
        consistent = share >= 0.9 and counts.count(mode_count(counts)) >= 0.9 * len(counts)
        if share > best[0]:
            best = (share, cand, consistent)
    return best[1], best[2]


def _parse_all(text: str, delimiter: str, limits: Limits) -> list[Record]:
    out: list[Record] = []
    # Slack for preamble, footer and blank lines; the exact row limit is checked on the body.
    ceiling = limits.max_rows + 10_000
    for rec in records(text, delimiter):
        out.append(rec)
        if len(out) > ceiling:
            raise _too_many_rows(limits)
    return out


def _too_many_rows(limits: Limits) -> LeadFileError:
    return LeadFileError(
        f"The file has more than {limits.max_rows:,} rows, the limit. Split it into smaller files "
        "(or filter it in Excel) and upload one at a time."
    )


def refuse_unclosed_quote(text: str, recs: list[Record], delimiter: str) -> None:
    """An opening quote that never closes turns the rest of the file into one cell: refuse it."""
    first, last, _ = recs[-1]
    if last == first:
        return  # the quote ran to the end of its own line only: nothing else was swallowed
    # Rare (the last row spans lines), so re-reading the lines here costs nothing in the common case.
    tail = "".join(io.StringIO(text, newline="").readlines()[first - 1 :])
    try:
        for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, strict=True):
            pass
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return
        raise LeadFileError(
            f'Line {first:,}: a quote (") opened on this line is never closed, so lines {first:,} to '
            f"{last:,} would all become one cell. Fix the quote in the file and upload it again."
        ) from None


def refuse_broken_quotes(text: str, recs: list[Record], delimiter: str) -> None:
    """A quoted value that runs over lines and closes in the middle of a value ("Big ... "Dan Co) has
    swallowed the rows between: refuse with the line where the quote opened."""
    spanning = [(first, last) for first, last, _ in recs if last > first]
    if not spanning:
        return
    lines = io.StringIO(text, newline="").readlines()
    for first, last in spanning:
        chunk = "".join(lines[first - 1 : last])
        try:
            for _ in csv.reader(io.StringIO(chunk, newline=""), delimiter=delimiter, strict=True):
                pass
        except csv.Error:
            raise LeadFileError(
                f'Line {first:,}: a quote (") opened on this line is not closed before the next line, so '
                f"lines {first:,} to {last:,} would be merged into one cell and the rows on lines "
                f"{first + 1:,} to {last:,} would be lost. Close the quote on line {first:,} (or remove it) "
                "and upload the file again."
            ) from None


def _raw_lines(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """Raw text of each (first, last) line span, split once for all of them."""
    lines = io.StringIO(text, newline="").readlines()
    return ["".join(lines[first - 1 : last]).rstrip("\r\n") for first, last in spans]


def _reason(n: int, h: int) -> str:
    return f"has {plural(n, 'field')} but the header has {h}"


def _swallowed_rows(fields: list[str], delimiter: str, h: int) -> int:
    """Lines inside a cell that look like whole rows: a quote closed far too late swallowed them."""
    if h < 2:
        return 0
    count = 0
    for cell in fields:
        inner = _LINE_BREAK.split(cell)[1:-1]
        rowlike = sum(1 for part in inner if part.count(delimiter) == h - 1)
        if rowlike >= 3 and rowlike * 2 >= len(inner):
            count += rowlike
    return count


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class Body:
    rows: list[list[str]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    where: list[int] = field(default_factory=list)
    bad: list[tuple[int, int, str]] = field(default_factory=list)  # first line, last line, reason
    last_id: int = 0
    trimmed: int = 0
    padded: int = 0
    empty: int = 0


def split_body(recs: list[Record], header: list[str], delimiter: str) -> Body:
    """Number the data rows and sort them into good rows and rejected ones; nothing is shifted."""
    h = len(header)
    named = h
    while named > 0 and not header[named - 1].strip():
        named -= 1
    body = Body()
    for first, last, fields in recs:
        if is_blank(fields):
            body.empty += bool(fields)
            continue
        body.last_id += 1
        n = len(fields)
        if n == h:
            if last - first >= 3 and (swallowed := _swallowed_rows(fields, delimiter, h)):
                reason = f'has a quote (") that closes only on line {last:,}, swallowing {swallowed:,} rows'
                body.bad.append((first, last, reason))
                continue
        elif n > h and not any(fields[h:]):
            fields, body.trimmed = fields[:h], body.trimmed + 1
        elif named <= n < h:
            # Only unnamed trailing columns are missing: nothing can shift, so fill them with "".
            fields, body.padded = fields + [""] * (h - n), body.padded + 1
        else:
            body.bad.append((first, last, _reason(n, h)))
            continue
        body.rows.append(fields)
        body.ids.append(body.last_id)
        body.where.append(first)
    return body


def _ragged_message(bad: list[tuple[int, int, str]], h: int, header_line: int, delimiter: str) -> str:
    first, last, reason = bad[0]
    where = f"Line {first:,}" + (f" (a row running to line {last:,})" if last > first else "")
    msg = f"{where} {reason} (line {header_line:,})."
    if len(bad) > 1:
        more = ", ".join(f"{b[0]:,}" for b in bad[1:SHOWN_LINES])
        rest = len(bad) - SHOWN_LINES
        plural_s = "s" if len(bad) > 2 else ""
        msg += f" Also line{plural_s} {more}" + (f" and {rest:,} more" if rest > 0 else "") + "."
    if last - first > 20 or "quote" in reason:
        msg += f' A quote (") on line {first:,} is probably not closed where it should be.'
    elif reason.startswith("has ") and int(reason.split()[1].replace(",", "")) > h:
        msg += (
            f" A value probably contains an unquoted {DELIMITER_NAMES.get(delimiter, repr(delimiter))}"
            ' (like "Acme, Inc.") that splits it in two, which would shift the columns.'
        )
    else:
        msg += " The row is missing values, or a line break inside a value is not quoted."
    return msg + (
        " Fix these lines in Excel or a text editor and upload the file again, or choose to skip bad lines "
        "(they will be listed)."
    )


def read_csv(
    data: bytes, filename: str, encoding: str | None, delimiter: str | None, ragged: str, limits: Limits
) -> LeadFile:
    """Read CSV bytes into a LeadFile (see lib.leads.read_leads for the contract)."""
    decoded = decode(data, filename, encoding)
    text, warnings = decoded.text, list(decoded.warnings)
    if not text.strip():
        raise LeadFileError("The file is empty: there are no column names and no rows in it.")
    delim, sniff_warnings = sniff(text, delimiter, limits)
    warnings += sniff_warnings
    recs = _parse_all(text, delim, limits)
    nonblank = [i for i, rec in enumerate(recs) if not is_blank(rec[2])]
    if not nonblank:
        raise LeadFileError("The file is empty: it has only blank lines.")
    refuse_unclosed_quote(text, recs, delim)
    refuse_broken_quotes(text, recs, delim)
    fields = [rec[2] for rec in recs]
    hi = find_header(fields, nonblank, SAMPLE_RECORDS)
    header_line, header = recs[hi][0], recs[hi][2]
    fi = footer_start(fields, nonblank, hi, len(header))
    body = split_body(recs[hi + 1 : fi], header, delim)
    if body.last_id > limits.max_rows:
        raise _too_many_rows(limits)

    rejected: list[RejectedLine] = []
    if body.bad:
        texts = _raw_lines(text, [(first, last) for first, last, _ in body.bad])
        rejected = [RejectedLine(b[0], b[2], cap_text(t)) for b, t in zip(body.bad, texts, strict=True)]
        if ragged == "reject":
            raise LeadFileError(_ragged_message(body.bad, len(header), header_line, delim), rejected=rejected)

    table = build_table(header, body.rows, body.ids, body.where, "line", limits)
    preamble = header_line - 1
    footer = recs[nonblank[-1]][1] - recs[fi][0] + 1 if fi < len(recs) else 0
    # Shown as their filled cells (as for XLSX rows): '"Grand Totals (3 records)","","",...' reads badly.
    set_aside = set_aside_lines(
        [(r[0], r[2], " | ".join(c for c in r[2] if c.strip())) for r in recs[:hi]], footer=False
    ) + set_aside_lines(
        [(r[0], r[2], " | ".join(c for c in r[2] if c.strip())) for r in recs[fi:]], footer=True
    )
    warnings += _warnings(body)
    if note := set_aside_warning(set_aside):
        warnings.append(note)
    warnings += table.warnings
    if rejected:
        shown = ", ".join(f"{r.line:,}" for r in rejected[:SHOWN_LINES])
        warnings.append(
            f"Left out {plural(len(rejected), 'line')} that don't fit the columns (lines {shown}"
            + (" ..." if len(rejected) > SHOWN_LINES else "")
            + "); their row numbers are not reused."
        )
    if not body.rows and not rejected:
        warnings.append("The file has column names but no rows.")
    return LeadFile(
        df=table.df,
        encoding=decoded.encoding,
        delimiter=delim,
        renamed_headers=table.renamed_headers,
        rejected=rejected,
        skipped_preamble=preamble,
        skipped_footer=footer,
        dropped_empty_columns=table.dropped_empty_columns,
        sheet=None,
        sheets=[],
        warnings=warnings,
        detected_encoding=decoded.detected,
        encoding_candidates=decoded.candidates,
        encoding_uncertain=decoded.uncertain,
        set_aside=set_aside,
    )


def _warnings(body: Body) -> list[str]:
    out: list[str] = []
    if body.empty:
        out.append(f"Skipped {plural(body.empty, 'empty row')}.")
    if body.trimmed:
        out.append(f"{plural(body.trimmed, 'row')} ended with extra empty fields; they were ignored.")
    if body.padded:
        out.append(
            f"{plural(body.padded, 'row')} lacked the last unnamed column(s); those cells were left empty."
        )
    return out
