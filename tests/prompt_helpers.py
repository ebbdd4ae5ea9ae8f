"""A fresh copy of the shipped prompt library for tests that save versions: every prompt at version 1."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent.parent / "prompts"


def fresh_library(directory: Path) -> Path:
    """The shipped prompts copied into `directory`, each as version 1 with no versions kept yet."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in SHIPPED.glob("*.yaml"):
        text = re.sub(r"(?m)^version: \d+$", "version: 1", path.read_text(encoding="utf-8"))
        (directory / path.name).write_text(text, encoding="utf-8")
        shutil.copymode(path, directory / path.name)
    return directory
