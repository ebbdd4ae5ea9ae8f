"""One key per company, from whatever a lead list holds about it: a website, an e-mail address or a name.

`company_key` makes the forms people write for one company alike, so a question about the company is asked
once however many leads work there: a URL or bare domain gives its host (scheme, `www.`, port, path, query
and case dropped: `https://www.Acme.com/about` -> `acme.com`), an e-mail address its domain
(`jo@acme.com` -> `acme.com`), a name its words without case, punctuation and trailing legal forms
(`ACME Holdings, Inc.` and `Acme Holdings` -> `acme holdings`; `Müller GmbH` -> `müller`). An empty cell has
no key ("" : such a row is asked on its own).
"""

from __future__ import annotations

import re
import unicodedata

# Legal forms dropped from the end of a company name (only there: "Co-op Bank" keeps "co").
LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "llc",
        "llp",
        "lp",
        "ltd",
        "limited",
        "plc",
        "corp",
        "corporation",
        "co",
        "company",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "ug",
        "se",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "aps",
        "pty",
        "pte",
        "kk",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+)$")
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/\s]*@)?([^/\s?#:]+)(?::\d+)?(?:[/?#].*)?$", re.I)
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$", re.I)


def company_key(value: str | None) -> str:
    """The key of the company a cell names (see the module docstring); "" when the cell is empty."""
    text = unicodedata.normalize("NFKC", str(value or "")).strip()
    if not text:
        return ""
    email = _EMAIL.match(text)
    if email and _HOST.match(email.group(1)):
        return _host(email.group(1))
    url = _URL.match(text)
    if url and _HOST.match(url.group(1)) and (" " not in text):
        return _host(url.group(1))
    return _name(text)


def _host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _name(text: str) -> str:
    words = re.sub(r"[^\w&]+", " ", text.casefold()).split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)
