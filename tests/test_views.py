"""Plain helpers the pages use: text that goes through Streamlit's Markdown elements is escaped."""

from __future__ import annotations

import re

import pytest

from lib.views.labels import md_escape

# An unescaped Markdown construct: one not preceded by a backslash.
ACTIVE = [
    re.compile(r"(?<!\\)!(?<!\\)\[[^\]]*(?<!\\)\]\((?<!\\)"),  # image ![alt](
    re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\("),  # link [text](
    re.compile(r"(?<!\\)\$[^$]+(?<!\\)\$"),  # LaTeX $...$
    re.compile(r"(?<!\\)\*\*[^*]+(?<!\\)\*\*"),  # bold
    re.compile(r"(?<!\\)<[a-z]"),  # an HTML tag
]


@pytest.mark.parametrize(
    "text",
    [
        "Unknown column ![x](http://127.0.0.1:9/x.png)",
        "[click me](javascript:alert(1))",
        "costs $5 and $6",
        "**urgent**",
        "<img src=x onerror=alert(1)>",
        "back\\slash ![a](b)",
    ],
)
def test_markdown_in_messages_is_neutralised(text):
    escaped = md_escape(text)
    assert not any(p.search(escaped) for p in ACTIVE), escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # removing the escapes gives the text back exactly


def test_plain_words_are_untouched():
    assert md_escape("The disk is full, free some space") == "The disk is full, free some space"
