"""Website research: read each lead's website, politely and safely, before the prompt.

`safety` decides which addresses may be reached and opens only checked sockets; `fetch` reads one
site (robots.txt, redirects, limits); `extract` turns a page into readable text; `job` reads a whole
list in background threads with a snapshot for the UI. `website_columns` adds the results to a table.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from lib.web.fetch import Fetcher, FetchError, FetchSettings, SiteText
from lib.web.job import WebJob, WebRow, WebSettings, WebSnapshot, start, stored_rows
from lib.web.safety import AddressPolicy, AddressRefused, BadAddress, refusal

TEXT_COLUMN = "website_text"
ERROR_COLUMN = "website_error"
NOT_READ = "Not read: the run stopped before this site."

__all__ = [
    "ERROR_COLUMN",
    "NOT_READ",
    "TEXT_COLUMN",
    "AddressPolicy",
    "AddressRefused",
    "BadAddress",
    "FetchError",
    "FetchSettings",
    "Fetcher",
    "SiteText",
    "WebJob",
    "WebRow",
    "WebSettings",
    "WebSnapshot",
    "refusal",
    "start",
    "stored_rows",
    "website_columns",
]


def website_columns(df: pd.DataFrame, rows: Iterable[WebRow]) -> pd.DataFrame:
    """The table with `website_text` and `website_error` set from a job's rows (by row id, never position).

    Columns of those names already in the table (an earlier reading) are replaced; every other column
    keeps its place and text. Rows the job has no result for get "Not read" in `website_error`.
    """
    by_id = {r.row_id: r for r in rows}
    texts, errors = [], []
    for row_id in df.index:
        row = by_id.get(int(row_id))
        if row is None or row.status == "pending":
            texts.append("")
            errors.append(NOT_READ)
        else:
            texts.append(row.text)
            errors.append(row.error or "")
    out = df.drop(columns=[c for c in (TEXT_COLUMN, ERROR_COLUMN) if c in df.columns])
    out[TEXT_COLUMN] = pd.array(texts, dtype="string")
    out[ERROR_COLUMN] = pd.array(errors, dtype="string")
    return out
