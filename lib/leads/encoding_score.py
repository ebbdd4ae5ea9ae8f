"""How much decoded text looks like the names and words of a lead list (higher is more plausible).

Only non-ASCII characters are scored: every candidate encoding reads ASCII the same. A letter used in
Western European names scores 2, one of Central European names 1.5, any other Latin letter 0.5; a
capital right after a small letter (`JosŽ`, `MŸller`), a symbol inside a word (`Nœ–ez`), a control
character or a letter of another script costs points. The weights are tuned on the misreadings the
issue lists (cp1252 vs Mac Roman vs cp1250 vs cp850 vs Latin-9) and tested in tests/test_encodings.py.
"""

from __future__ import annotations

import re
import unicodedata

WESTERN = set("éèêëáàâäãåçíìîïñóòôöõøúùûüýÿßæœÉÈÊËÁÀÂÄÃÅÇÍÌÎÏÑÓÒÔÖÕØÚÙÛÜÝÆŒ")
CENTRAL = set("łśźżćńęąčřšžőűěůťďňĺľŕăşţđŁŚŹŻĆŃĘĄČŘŠŽŐŰĚŮŤĎŇĹĽŔĂŞŢĐ")
CURRENCY = set("€£¥¢")
# Symbols real lead lists carry beside words: marks, dashes, typographic quotes.
COMMON_SYMBOLS = set("™®©°•…–—“”‘’«»§·×") | CURRENCY
APOSTROPHES = set("’‘ʼ´")
_WORD = re.compile(r"[^\W\d_]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _shape_ok(word: str) -> bool:
    """lower, UPPER or Title: the case shapes of real words and names."""
    return word.islower() or word.isupper() or (word[0].isupper() and (len(word) == 1 or word[1:].islower()))


def _letter(ch: str) -> float:
    if ch in WESTERN:
        return 2.0
    if ch in CENTRAL:
        return 1.0
    if "LATIN" in unicodedata.name(ch, ""):
        return 0.5
    return -1.0  # another script among Latin letters: a misreading


def score_text(text: str) -> float:
    """Sum of per-character plausibility over the non-ASCII characters of `text`."""
    total = 0.0
    for m in _WORD.finditer(text):
        word = m.group()
        if word.isascii():
            continue
        ok = _shape_ok(word)
        for pos, ch in enumerate(word):
            if ch < "\x80":
                continue
            if not ok:
                total -= 3.0  # 'JosŽ', 'MŸller', 'SÒo'
            elif pos == 0 and ch.islower() and len(word) > 1:
                total += 0.5  # names start with a capital: 'èsa' is a misreading of 'Åsa'
            else:
                total += _letter(ch)
    n = len(text)
    for m in _NON_ASCII.finditer(text):
        i, ch = m.start(), m.group()
        if ch.isalpha():
            continue  # scored with its word above
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < n else ""
        before, after = prev.isalpha(), nxt.isalpha()
        if unicodedata.category(ch)[0] == "C":
            total -= 5.0
        elif ch in APOSTROPHES and before and after:
            total += 1.0  # O’Brien
        elif before and after:
            total -= 3.0  # 'Nœ–ez', 'Ra£l'
        elif ch in CURRENCY and (before or after):
            total -= 2.0  # '£Ûdü': money sits beside digits, not letters
        elif ch not in COMMON_SYMBOLS:
            total -= 1.0  # ¦ ¨ ¸ ¼ ± ³ and box drawing: rare in lead lists
    return total
