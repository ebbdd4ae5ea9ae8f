"""`.env` files: where the app and the command line read OPENAI_API_KEY / OPENAI_BASE_URL from.

The project's own `.env` (next to app.py) is read first, then one in the current folder, so the command
line finds the key wherever it is run from. A variable already in the environment is never replaced, and
of two files naming the same variable the first one read wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout's top folder: where app.py, the Makefile and the project's `.env` are."""

# Names the .env files to read instead (os.pathsep between them; empty: none). The tests set it empty, so a
# developer's own .env (a real key) never reaches a test or the processes it starts.
DOTENV_ENV = "LEAD_STUDIO_DOTENV"


def dotenv_paths(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The `.env` files to read, in order: the project's, then the current folder's (once if they are one),
    unless LEAD_STUDIO_DOTENV names others."""
    chosen = (os.environ if env is None else env).get(DOTENV_ENV)
    if chosen is not None:
        return [Path(p) for p in chosen.split(os.pathsep) if p.strip()]
    project = PROJECT_ROOT / ".env"
    here = (cwd or Path.cwd()).resolve() / ".env"
    return [project] if here == project else [project, here]


def load_dotenv_files(
    paths: Sequence[Path] | None = None, environ: MutableMapping[str, str] | None = None
) -> list[Path]:
    """Copy the variables of each existing `.env` in `paths` (default `dotenv_paths()`) into `environ`
    (default os.environ), leaving those already set alone; returns the files read."""
    from dotenv import dotenv_values

    environ = os.environ if environ is None else environ
    read = []
    for path in dotenv_paths() if paths is None else paths:
        if not path.is_file():
            continue
        for name, value in dotenv_values(path).items():
            if value is not None and name not in environ:
                environ[name] = value
        read.append(path)
    return read


def no_key_message() -> str:
    """What the command line says when no key is found: where it looked, and the offline demo."""
    return (
        f"No API key: set OPENAI_API_KEY in the environment, or in a .env file next to app.py "
        f"({PROJECT_ROOT / '.env'}) or in the current folder. To try it offline: `make demo-server`, then "
        "OPENAI_BASE_URL=http://127.0.0.1:8765/v1 with any key (OPENAI_API_KEY=sk-demo)."
    )
