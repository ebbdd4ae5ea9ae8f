"""CSV text -> LeadFile: delimiter, header line, preamble and footer, ragged rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence

from lib.leads_common import LeadFile, LeadFileError, Limits, RejectedLine, cap_text, plural
from lib.leads_decode import decode
from lib.leads_table import build_table, mode_count

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}
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


def sniff(text: str, delimiter: str | None, limits: Limits) -> str:
    """Pick the delimiter whose field count is consistent over the most records; refuse absurd widths early."""
    sample, truncated = text[:SAMPLE_CHARS], len(text) > SAMPLE_CHARS
    if delimiter is None:
        best = (-1, -1)
        for cand in DELIMITERS:
            m, freq, _ = _sample_stats(sample, truncated, cand)
            if (freq, m) > best:
                best, delimiter = (freq, m), cand
    assert delimiter is not None
    m, _, widest = _sample_stats(sample, truncated, delimiter)
    # A header line of 300,000 columns is refused here, before the whole file is parsed.
    if max(m, widest if m <= 1 else 0) > limits.max_columns:
        raise LeadFileError(
            f"The file has more than {limits.max_columns:,} columns (about {max(m, widest):,} in its first "
            f"line{'' if m <= 1 else 's'}); the limit is {limits.max_columns:,}. "
            "Delete the columns you don't need, or check that this is really a lead list."
        )
    return delimiter


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


def find_header(recs: list[Record], nonblank: list[int]) -> int:
    """Index of the header record: the first whose field count reaches the body's dominant count."""
    counts = [len(recs[i][2]) for i in nonblank[:SAMPLE_RECORDS]]
    m = mode_count(counts)
    pos = next(k for k, i in enumerate(nonblank) if len(recs[i][2]) >= m)
    # Some exporters end every data row with a delimiter but not the header: the header then has
    # fewer fields than the body. Take it if the body is empty beyond its width.
    if pos > 0:
        prev = recs[nonblank[pos - 1]][2]
        body = [recs[i][2] for i in nonblank[pos : pos + SAMPLE_RECORDS] if len(recs[i][2]) == m]
        if 2 <= len(prev) < m and not any(any(f[len(prev) :]) for f in body):
            pos -= 1
    return nonblank[pos]


def _footer_start(recs: list[Record], nonblank: list[int], header: int) -> int:
    """Index where trailing one-field lines ('Total: 1234', Salesforce's copyright lines) begin."""
    end = len(recs)
    if len(recs[header][2]) <= 1:
        return end
    for i in reversed(nonblank):
        if i <= header or len(recs[i][2]) != 1:
            break
        end = i
    return end


def _raw_lines(text: str, first: int, last: int) -> str:
    lines = io.StringIO(text, newline="").readlines()
    return "".join(lines[first - 1 : last]).rstrip("\r\n")


def _reason(n: int, h: int) -> str:
    return f"has {plural(n, 'field')} but the header has {h}"


def _ragged_message(bad: list[tuple[int, int, int]], h: int, header_line: int, delimiter: str) -> str:
    first, last, n = bad[0]
    where = f"Line {first:,}" + (f" (a row running to line {last:,})" if last > first else "")
    msg = f"{where} {_reason(n, h)} (line {header_line:,})."
    if len(bad) > 1:
        more = ", ".join(f"{b[0]:,}" for b in bad[1:SHOWN_LINES])
        rest = len(bad) - SHOWN_LINES
        msg += f" Also lines {more}" + (f" and {rest:,} more" if rest > 0 else "") + "."
    if last - first > 20:
        msg += f' A quote (") on line {first:,} is probably never closed.'
    elif n > h:
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
):
    """Read CSV bytes into a LeadFile (see lib.leads.read_leads for the contract)."""
    text, enc, warnings = decode(data, filename, encoding)
    if not text.strip():
        raise LeadFileError("The file is empty: there are no column names and no rows in it.")
    delim = sniff(text, delimiter, limits)
    recs = _parse_all(text, delim, limits)
    nonblank = [i for i, rec in enumerate(recs) if not is_blank(rec[2])]
    if not nonblank:
        raise LeadFileError("The file is empty: it has only blank lines.")
    hi = find_header(recs, nonblank)
    header_line, header = recs[hi][0], recs[hi][2]
    fi = _footer_start(recs, nonblank, hi)
    h = len(header)
    named = h
    while named > 0 and not header[named - 1].strip():
        named -= 1

    rows: list[list[str]] = []
    ids: list[int] = []
    where: list[int] = []
    bad: list[tuple[int, int, int]] = []
    bad_ids: list[int] = []
    trimmed = padded = empty_rows = 0
    rid = 0
    for first, last, fields in recs[hi + 1 : fi]:
        if is_blank(fields):
            empty_rows += bool(fields)
            continue
        rid += 1
        n = len(fields)
        if n == h:
            pass
        elif n > h and not any(fields[h:]):
            fields, trimmed = fields[:h], trimmed + 1
        elif named <= n < h:
            # Only unnamed trailing columns are missing: nothing can shift, so fill them with "".
            fields, padded = fields + [""] * (h - n), padded + 1
        else:
            bad.append((first, last, n))
            bad_ids.append(rid)
            continue
        rows.append(fields)
        ids.append(rid)
        where.append(first)
    if rid > limits.max_rows:
        raise _too_many_rows(limits)

    rejected: list[RejectedLine] = []
    if bad:
        rejected = [RejectedLine(f, _reason(n, h), cap_text(_raw_lines(text, f, last))) for f, last, n in bad]
        if ragged == "reject":
            raise LeadFileError(_ragged_message(bad, h, header_line, delim), rejected=rejected)

    table = build_table(header, rows, ids, where, "line", limits)
    skipped_preamble = header_line - 1
    last_line = recs[nonblank[-1]][1]
    skipped_footer = last_line - recs[fi][0] + 1 if fi < len(recs) else 0
    warnings += _warnings(
        skipped_preamble, header_line, skipped_footer, recs, fi, empty_rows, trimmed, padded
    )
    warnings += table.warnings
    if rejected:
        warnings.append(
            f"Left out {plural(len(rejected), 'line')} whose number of fields does not match the header "
            f"(lines {', '.join(f'{r.line:,}' for r in rejected[:SHOWN_LINES])}"
            + (" ..." if len(rejected) > SHOWN_LINES else "")
            + "); their row numbers are not reused."
        )
    if not rows and not rejected:
        warnings.append("The file has column names but no rows.")
    return LeadFile(
        df=table.df,
        encoding=enc,
        delimiter=delim,
        renamed_headers=table.renamed_headers,
        rejected=rejected,
        skipped_preamble=skipped_preamble,
        skipped_footer=skipped_footer,
        dropped_empty_columns=table.dropped_empty_columns,
        sheet=None,
        sheets=[],
        warnings=warnings,
    )


def _warnings(
    preamble: int,
    header_line: int,
    footer: int,
    recs: list[Record],
    fi: int,
    empty: int,
    trimmed: int,
    padded: int,
) -> list[str]:
    out: list[str] = []
    if preamble:
        out.append(
            f"Skipped {plural(preamble, 'line')} above the column names (found on line {header_line:,})."
        )
    if footer:
        out.append(
            f"Skipped {plural(footer, 'line')} at the end that are not rows "
            f"(starting with {cap_text(recs[fi][2][0], 60)!r})."
        )
    if empty:
        out.append(f"Skipped {plural(empty, 'empty row')}.")
    if trimmed:
        out.append(f"{plural(trimmed, 'row')} ended with extra empty fields; they were ignored.")
    if padded:
        out.append(f"{plural(padded, 'row')} lacked the last unnamed column(s); those cells were left empty.")
    return out
