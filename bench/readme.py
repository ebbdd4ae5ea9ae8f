"""bench/README.md is shared: each benchmark rewrites only its own `## ` section."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).with_name("README.md")


def replace_section(section: str, readme: Path = README) -> None:
    """Replace the section whose `## ` heading is `section`'s first line (or append it)."""
    heading = section.splitlines()[0]
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    readme.write_text(text.rstrip("\n") + "\n")
