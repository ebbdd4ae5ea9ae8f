"""lib/leads/numfmt.py: Excel number formats, as en-US Excel shows them (a table), and the fast paths agree
with the general one (a property)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.leads import numfmt
from lib.leads.numfmt import format_value

CASES = [
    (2134, "00000", "02134"), (2134, "00000-0000", "00000-2134"), (21341234, "00000-0000", "02134-1234"),
    (6175550100, "(###) ###-####", "(617) 555-0100"), (5550100, "[<=9999999]###-####;(###) ###-####", "555-0100"),
    (6175550100, "[<=9999999]###-####;(###) ###-####", "(617) 555-0100"), (123456789, "000-00-0000", "123-45-6789"),
    (0.15, "0%", "15%"), (0.155, "0.0%", "15.5%"), (1250000, "#,##0", "1,250,000"),
    (1250000.5, "#,##0.00", "1,250,000.50"), (-1250, "#,##0;(#,##0)", "(1,250)"), (-1250, "#,##0", "-1,250"),
    (0, "#,##0", "0"), (165500, '"$"#,##0.00', "$165,500.00"), (165500, "[$$-409]#,##0.00", "$165,500.00"),
    (1234.5, "[$€-407] #,##0.00", "€ 1,234.50"), (12, "0.00", "12.00"), (0.5, "#.##", ".5"),
    (12345, "0.00E+00", "1.23E+04"), (1500000, '#,##0,"K"', "1,500K"), (7, "0", "7"), (7.5, "0", "8"),
    (2.5, "0", "3"), (0, '0;-0;"zero"', "zero"), (1234, "#,##0.00_);(#,##0.00)", "1,234.00 "),
    (True, "0", "TRUE"), ("02134", "@", "02134"), (2134, "@", "2134"), (0.1, "General", "0.1"),
    ("ab", '0;0;0;"Ref: "@', "Ref: ab"),
    (dt.datetime(2024, 12, 31, 13, 45), "yyyy-mm-dd", "2024-12-31"),
    (dt.datetime(2024, 12, 31, 13, 45), "mm-dd-yy", "12/31/2024"),  # Excel's built-in short date, en-US
    (dt.datetime(2024, 12, 31, 13, 45), "m/d/yy h:mm", "12/31/2024 13:45"),
    (dt.datetime(2024, 12, 31, 13, 45), "d-mmm-yy", "31-Dec-24"),
    (dt.datetime(2024, 12, 31, 13, 45), "dd/mm/yyyy hh:mm AM/PM", "31/12/2024 01:45 PM"),
    (dt.time(13, 45, 30), "h:mm:ss", "13:45:30"), (dt.datetime(2024, 1, 5), "mmmm d, yyyy", "January 5, 2024"),
    (dt.datetime(2024, 1, 5), "dddd", "Friday"), (dt.timedelta(hours=26, minutes=5), "[h]:mm", "26:05"),
    (dt.datetime(2024, 1, 5, 9, 3, 7, 250000), "hh:mm:ss.00", "09:03:07.25"),
    (3, "# ?/?", "3"),  # fractions are outside the subset: General
]  # fmt: skip


@pytest.mark.parametrize(("value", "code", "shown"), CASES, ids=[f"{c[1]}={c[2]}" for c in CASES])
def test_format_as_excel_shows_it(value, code, shown) -> None:
    assert format_value(value, code) == shown


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(0, 1e12, allow_nan=False) | st.integers(0, 10**12),
    code=st.sampled_from(sorted(numfmt._FAST)),
)
def test_fast_paths_agree_with_the_general_formatter(value, code) -> None:
    fast = format_value(value, code)
    saved = dict(numfmt._FAST)
    numfmt._FAST.clear()
    try:
        assert format_value(value, code) == fast
    finally:
        numfmt._FAST.update(saved)
