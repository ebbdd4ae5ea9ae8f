"""Excel number formats applied to cell values: the text a person sees in the cell (en-US Excel).

A tested subset of Excel's format language, the part lead lists use (docs/lead-files.md):
General; text `@`; digit placeholders `0 # ?` with literals between them (ZIP `00000`, ZIP+4
`00000-0000`, phones `(###) ###-####`, `[<=9999999]###-####;(###) ###-####`); thousands `,` and scaling
by trailing commas; decimals; percent; scientific `0.00E+00`; sections `pos;neg;zero;text` and
conditions `[<=n]`; quoted and escaped literals, `_x` spacing, `*x` fill (dropped), colours and locale
tags (`[Red]`, `[$€-407]` -> `€`); dates and times (`yyyy mm dd hh mm ss AM/PM`, `mmm`, `dddd`, `[h]`,
fractions of a second). Excel's built-in short date (id 14, stored as `mm-dd-yy`) shows as `m/d/yyyy`
in en-US Excel, so that is what is returned. Anything outside the subset (fractions `# ?/?`) falls
back to General, which is never worse than ignoring the format.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

# openpyxl returns the built-in formats by their code; these are what en-US Excel shows for them.
BUILTIN_DISPLAY = {
    "mm-dd-yy": "m/d/yyyy",
    "m/d/yy h:mm": "m/d/yyyy h:mm",
    "d-mmm-yy": "d-mmm-yy",
}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_CONDITION = re.compile(r"^\[(<=|>=|<>|<|>|=)(-?\d+(?:\.\d+)?)\]")
_BRACKET = re.compile(r"\[[^\]]*\]")
_DATE_TOKENS = re.compile(
    r"(?i)(yyyy|yy|mmmmm|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am/pm|a/p|\.0+|\[h+\]|\[m+\]|\[s+\])"
)
_EPOCH = dt.datetime(1899, 12, 30)


def general(value: object) -> str:
    """The text a cell shows in Excel's General format; dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Excel keeps 15 significant digits; repr would show binary noise like 0.30000000000000004.
        return format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _elapsed(value)
    return str(value)


def _elapsed(value: dt.timedelta) -> str:
    seconds = round(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@lru_cache(maxsize=512)
def split_sections(code: str) -> tuple[str, ...]:
    """Split on ';' outside quotes, brackets and escapes."""
    out, cur, i, quoted, bracket = [], [], 0, False, False
    while i < len(code):
        ch = code[i]
        if ch == "\\" and not quoted and i + 1 < len(code):
            cur.append(code[i : i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "[" and not quoted:
            bracket = True
        elif ch == "]" and not quoted:
            bracket = False
        elif ch == ";" and not quoted and not bracket:
            out.append("".join(cur))
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return tuple(out)


@lru_cache(maxsize=1024)
def _tokens(section: str) -> tuple[tuple[str, str], ...]:
    """('lit', text) and ('code', text) pieces: quoted, escaped, `_x` and `*x` become literals."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(section):
        ch = section[i]
        if ch == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            out.append(("lit", section[i + 1 : end]))
            i = end + 1
        elif ch == "\\" and i + 1 < len(section):
            out.append(("lit", section[i + 1]))
            i += 2
        elif ch == "_" and i + 1 < len(section):
            out.append(("lit", " "))  # space as wide as the next character
            i += 2
        elif ch == "*" and i + 1 < len(section):
            i += 2  # fill character: repeats to the column width, nothing to show in text
        elif ch == "[":
            end = section.find("]", i)
            end = len(section) if end < 0 else end
            tag = section[i + 1 : end]
            if tag.startswith("$"):
                symbol = tag[1:].split("-")[0]
                out.append(("lit", symbol))
            elif re.fullmatch(r"(?i)h+|m+|s+", tag):
                out.append(("code", section[i : end + 1]))
            i = end + 1  # colours, conditions and locale tags show nothing
        else:
            out.append(("code", ch))
            i += 1
    return tuple(out)


@lru_cache(maxsize=1024)
def is_date_section(section: str) -> bool:
    code = "".join(t for kind, t in _tokens(section) if kind == "code").lower()
    code = re.sub(r"(?<=s)\.0+", "", code)  # fractions of a second: 'ss.00'
    return any(c in code for c in "ymdhs") and not any(c in code for c in "0#?")


def _pick_section(sections: list[str], number: float) -> tuple[str, float, bool]:
    """(section, value to show, whether to print a minus sign)."""
    conds = [_CONDITION.match(s) for s in sections]
    if any(conds):
        for s, c in zip(sections, conds, strict=False):
            if c is None:
                return s, abs(number) if number < 0 and len(sections) > 1 else number, number < 0
            op, limit = c.group(1), float(c.group(2))
            ok = {
                "<=": number <= limit,
                ">=": number >= limit,
                "<": number < limit,
                ">": number > limit,
                "=": number == limit,
                "<>": number != limit,
            }[op]
            if ok:
                return s, number, number < 0
        return sections[-1], number, number < 0
    numeric = [s for s in sections[:3]]
    if number > 0 or len(numeric) == 1:
        return numeric[0], number, number < 0
    if number < 0:
        return (numeric[1], -number, False) if len(numeric) >= 2 else (numeric[0], number, True)
    return (numeric[2] if len(numeric) >= 3 else numeric[0]), number, False


def _round(value: float, places: int) -> Decimal:
    # Excel rounds half away from zero on the decimal it shows (15 significant digits first).
    return Decimal(format(value, ".15g")).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _format_number(tokens: list[tuple[str, str]], value: float, minus: bool) -> str | None:
    codes = "".join(t for kind, t in tokens if kind == "code")
    if re.search(r"\d/\d|\?/\?|#/#", codes):
        return None  # fractions: not in the subset
    if re.search(r"[eE][+-]", codes):
        return _scientific(tokens, value, minus)
    percent = codes.count("%")
    value = value * 100**percent
    # Trailing commas after the last digit placeholder divide by 1,000 each.
    placeholder_idx = [i for i, (k, t) in enumerate(tokens) if k == "code" and t in "0#?"]
    if not placeholder_idx:
        text = "".join(t for _, t in tokens)
        return ("-" if minus else "") + text
    last = placeholder_idx[-1]
    scale = 0
    j = last + 1
    while j < len(tokens) and tokens[j] == ("code", ","):
        scale += 1
        j += 1
    value = value / 1000**scale
    dot = next((i for i, (k, t) in enumerate(tokens) if k == "code" and t == "."), None)
    int_tokens = tokens[:dot] if dot is not None else tokens[: last + 1]
    frac_tokens = tokens[dot + 1 :] if dot is not None else []
    frac_places = [t for k, t in frac_tokens if k == "code" and t in "0#?"]
    thousands = any(
        k == "code" and t == "," and i < (dot if dot is not None else last)
        for i, (k, t) in enumerate(tokens[: (dot if dot is not None else last)])
    )
    number = _round(abs(value), len(frac_places))
    int_digits, _, frac_digits = f"{number:f}".partition(".")
    frac_digits = frac_digits.ljust(len(frac_places), "0")
    if int_digits == "0":
        int_digits = ""
    int_text = _fill_integer(int_tokens, int_digits, thousands)
    frac_text = _fill_fraction(frac_tokens, frac_digits)
    after = tokens[last + 1 + scale :] if dot is None else []
    tail = "".join(t for k, t in after if k == "lit" or t not in ",")
    sign = "-" if minus and number != 0 else ""
    body = int_text + ("." + frac_text if dot is not None else "") + tail
    if dot is not None and not frac_text and not any(t in "0?" for t in frac_places):
        body = int_text + "." + tail  # '#.##' on an integer shows '5.'
    return sign + body


def _fill_integer(tokens: list[tuple[str, str]], digits: str, thousands: bool) -> str:
    """Put digits into the placeholders from the right; surplus digits go to the leftmost one."""
    slots = [i for i, (k, t) in enumerate(tokens) if k == "code" and t in "0#?"]
    if thousands:
        # Grouping formats ('#,##0') have no literals between placeholders: group the whole number.
        pad = sum(1 for i in slots if tokens[i][1] == "0")
        shown = digits.rjust(pad, "0") if len(digits) < pad else digits
        grouped = f"{int(shown):,}" if shown else ""
        if shown and shown.startswith("0") and len(shown) > 1:
            grouped = ",".join(_chunks(shown))
        out, placed = [], False
        for i, (k, t) in enumerate(tokens):
            if k == "lit":
                out.append(t)
            elif t in "0#?" and not placed and i == slots[0]:
                out.append(grouped)
                placed = True
            elif t in "0#?,":
                continue
            else:
                out.append(t)
        return "".join(out)
    out = [t if k == "lit" else ("" if t in "0#?" else t) for k, t in tokens]
    rest = digits
    for n, i in enumerate(reversed(slots)):
        kind = tokens[i][1]
        if n == len(slots) - 1:
            fill = rest if rest else ("0" if kind == "0" else (" " if kind == "?" else ""))
        elif rest:
            fill, rest = rest[-1], rest[:-1]
        else:
            fill = "0" if kind == "0" else (" " if kind == "?" else "")
        out[i] = fill
    return "".join(t for t in out if t != ",")


def _chunks(digits: str) -> list[str]:
    head = len(digits) % 3 or 3
    return [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]


def _fill_fraction(tokens: list[tuple[str, str]], digits: str) -> str:
    out, pos = [], 0
    kinds = [t for k, t in tokens if k == "code" and t in "0#?"]
    # '#' and '?' drop trailing zeros (shown as nothing / space); '0' keeps them.
    keep = len(digits)
    while keep > 0 and digits[keep - 1] == "0" and kinds[keep - 1] != "0":
        keep -= 1
    for k, t in tokens:
        if k == "lit":
            out.append(t)
        elif t in "0#?":
            if pos < keep:
                out.append(digits[pos])
            elif t == "?":
                out.append(" ")
            pos += 1
        elif t == "%":
            out.append("%")
    return "".join(out)


def _scientific(tokens: list[tuple[str, str]], value: float, minus: bool) -> str:
    codes = "".join(t for k, t in tokens if k == "code")
    mantissa, _, exponent = re.split(r"([eE][+-])", codes, maxsplit=1)
    places = len(mantissa.split(".")[1]) if "." in mantissa else 0
    text = f"{abs(value):.{places}E}"
    m, e = text.split("E")
    exp = int(e)
    digits = max(len(exponent), 1)
    sign = "-" if exp < 0 else ("+" if "+" in codes else "")
    return ("-" if minus else "") + f"{m}E{sign}{abs(exp):0{digits}d}"


def _format_date(tokens: list[tuple[str, str]], value: dt.datetime | dt.date | dt.time | dt.timedelta) -> str:
    if isinstance(value, dt.timedelta):
        moment, elapsed = _EPOCH + value, value
    elif isinstance(value, dt.datetime):
        moment, elapsed = value, value - _EPOCH
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
        elapsed = moment - _EPOCH
    else:
        moment = dt.datetime.combine(dt.date(1899, 12, 30), value)
        elapsed = moment - _EPOCH
    ampm, parts, minutes = _date_plan(tokens)
    out: list[str] = []
    for idx, (part, low, is_token) in enumerate(parts):
        if not is_token:
            out.append(part)
            continue
        if low in ("yyyy",):
            out.append(f"{moment.year:04d}")
        elif low == "yy":
            out.append(f"{moment.year % 100:02d}")
        elif low in ("m", "mm"):
            if idx in minutes:
                out.append(f"{moment.minute:02d}" if low == "mm" else str(moment.minute))
            else:
                out.append(f"{moment.month:02d}" if low == "mm" else str(moment.month))
        elif low == "mmm":
            out.append(_MONTHS[moment.month - 1][:3])
        elif low == "mmmm":
            out.append(_MONTHS[moment.month - 1])
        elif low == "mmmmm":
            out.append(_MONTHS[moment.month - 1][0])
        elif low == "d":
            out.append(str(moment.day))
        elif low == "dd":
            out.append(f"{moment.day:02d}")
        elif low == "ddd":
            out.append(_DAYS[moment.weekday()][:3])
        elif low == "dddd":
            out.append(_DAYS[moment.weekday()])
        elif low in ("h", "hh"):
            hour = moment.hour
            if ampm:
                hour = hour % 12 or 12
            out.append(f"{hour:02d}" if low == "hh" else str(hour))
        elif low in ("s", "ss"):
            out.append(f"{moment.second:02d}" if low == "ss" else str(moment.second))
        elif low.startswith(".0"):
            places = len(low) - 1
            frac = moment.microsecond / 1e6
            out.append("." + f"{frac:.{places}f}"[2:])
        elif low in ("am/pm", "a/p"):
            pm = moment.hour >= 12
            text = ("PM" if pm else "AM") if low == "am/pm" else ("P" if pm else "A")
            out.append(text if part[0].isupper() else text.lower())
        elif low.startswith("[h"):
            out.append(str(int(elapsed.total_seconds() // 3600)))
        elif low.startswith("[m"):
            out.append(str(int(elapsed.total_seconds() // 60)))
        elif low.startswith("[s"):
            out.append(str(int(elapsed.total_seconds())))
    return "".join(out)


@lru_cache(maxsize=512)
def _date_plan(
    tokens: tuple[tuple[str, str], ...],
) -> tuple[bool, tuple[tuple[str, str, bool], ...], frozenset[int]]:
    """(AM/PM?, parts as (text, lowered, is a date token), indexes of 'm'/'mm' that mean minutes)."""
    code = "".join(t if k == "code" else "\x00" + t + "\x01" for k, t in tokens)
    ampm = re.search(r"(?i)am/pm|a/p", code) is not None
    raw = _DATE_TOKENS.split(code)
    parts = tuple(
        (p, p.lower(), bool(p) and _DATE_TOKENS.fullmatch(p) is not None)
        if p and _DATE_TOKENS.fullmatch(p)
        else (p.replace("\x00", "").replace("\x01", ""), "", False)
        for p in raw
    )
    # Excel reads 'm'/'mm' as minutes right after an hour or right before seconds.
    minutes = set()
    for idx, (_, low, is_token) in enumerate(parts):
        if not is_token or low not in ("m", "mm"):
            continue
        prev_tok = next((q for _, q, t in reversed(parts[:idx]) if t), "")
        next_tok = next((q for _, q, t in parts[idx + 1 :] if t), "")
        if prev_tok in ("h", "hh") or prev_tok.startswith("[h") or next_tok in ("s", "ss"):
            minutes.add(idx)
    return ampm, parts, frozenset(minutes)


def _half_up(number: float, places: int) -> Decimal:
    return _round(number, places)


# The formats lead lists use most, straight to Python formatting (same results as the general path,
# checked in tests/test_numfmt.py); a lookup instead of parsing the code for every cell.
_FAST: dict[str, Callable[[float], str]] = {
    "0": lambda v: f"{_half_up(v, 0):f}",
    "00000": lambda v: f"{int(_half_up(v, 0)):05d}",
    "0.00": lambda v: f"{_half_up(v, 2):f}",
    "#,##0": lambda v: f"{_half_up(v, 0):,f}",
    "#,##0.00": lambda v: f"{_half_up(v, 2):,f}",
    "0%": lambda v: f"{_half_up(v * 100, 0):f}%",
    "0.00%": lambda v: f"{_half_up(v * 100, 2):f}%",
}


def format_value(value: object, code: str | None) -> str:
    """`value` (as openpyxl gives it) shown with the number format `code`."""
    if value is None:
        return ""
    if not code or code == "General" or isinstance(value, bool):
        return general(value)
    code = BUILTIN_DISPLAY.get(code, code)
    sections = split_sections(code)
    if isinstance(value, str):
        # Text is shown as typed, unless a fourth section wraps it ('"Ref: "@').
        if len(sections) >= 4 and "@" in sections[3]:
            return "".join(t if k == "lit" else (value if t == "@" else "") for k, t in _tokens(sections[3]))
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        section = next((s for s in sections if is_date_section(s)), None)
        if section is None:
            return general(value)
        return _format_date(_tokens(section), value)
    if not isinstance(value, int | float):
        return general(value)
    number = float(value)
    if code.strip() == "@" or sections[0].strip().lower() == "general":
        return general(value)
    fast = _FAST.get(code)
    if fast is not None and math.isfinite(number) and number >= 0:
        return fast(number)
    section, shown, minus = _pick_section(sections, number)
    tokens = _tokens(_CONDITION.sub("", section))
    if section.strip().lower() == "general" or not tokens:
        return ("-" if minus else "") + general(abs(value) if minus else value)
    if is_date_section(section):
        return _format_date(tokens, _EPOCH + dt.timedelta(days=number))
    try:
        text = _format_number(tokens, shown, minus)
    except (ValueError, ArithmeticError):
        text = None
    return general(value) if text is None else text
