"""Which record is the header: the first that reaches the body's usual width, unless it is plainly a
data row and a header-like record stands just above it (a data row never wins by having more fields)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from lib.leads.table import mode_count

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_URL = re.compile(r"^(https?://|www\.)", re.I)
_NUMBERISH = re.compile(r"^[\d\s().,+$%/:-]*\d[\d\s().,+$%/:-]*$")


def looks_like_data(cells: Sequence[str]) -> bool:
    """An email, a URL or a number-like value: what leads hold and column names do not."""
    return any(_EMAIL.search(c) or _URL.match(c.strip()) or _NUMBERISH.match(c.strip()) for c in cells if c)


def looks_like_header(cells: Sequence[str]) -> bool:
    filled = [c for c in cells if c.strip()]
    return len(filled) >= 2 and not looks_like_data(filled) and all(len(c) <= 60 for c in filled)


def find_header(rows: Sequence[Sequence[str]], nonblank: list[int], sample: int) -> int:
    """Index of the header record among `rows` (`nonblank` lists the rows that are not blank)."""
    counts = [len(rows[i]) for i in nonblank[:sample]]
    m = mode_count(counts)
    pos = next(k for k, i in enumerate(nonblank) if len(rows[i]) >= m)
    if pos > 0:
        # Some exporters end every data row with a delimiter but not the header: the header then has
        # fewer fields than the body. Take it if the body is empty beyond its width.
        prev = rows[nonblank[pos - 1]]
        body = [rows[i] for i in nonblank[pos : pos + sample] if len(rows[i]) == m]
        if 2 <= len(prev) < m and not any(any(f[len(prev) :]) for f in body):
            return nonblank[pos - 1]
        # 'Name,Email' above 'John Smith,john@acme.com,Acme, Inc.': the wider record is a lead whose
        # unquoted comma split a value; the narrower one above it is the header, and the wide rows
        # are the ones to blame.
        if looks_like_data(rows[nonblank[pos]]):
            for k in range(pos - 1, -1, -1):
                if looks_like_header(rows[nonblank[k]]):
                    return nonblank[k]
    return nonblank[pos]
