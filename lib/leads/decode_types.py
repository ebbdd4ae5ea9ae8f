"""The encoding candidate type, apart from decode.py so common.py can name it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EncodingCandidate:
    """One way to read the file, with the cells it reads differently from the others."""

    name: str
    label: str
    score: float
    # (line, cell text under this encoding) for cells whose text depends on the encoding.
    preview: list[tuple[int, str]] = field(default_factory=list)
