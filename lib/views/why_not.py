"""Why a button is greyed out, in words: every disabled button's tooltip says what to do about it.

`why(...)` takes the reasons a button may not be pressed now, most important first, and gives the first that
holds (None: the button works). A page passes it as both `disabled=` (is there a reason?) and `help=` (the
reason, else the button's usual help), so a greyed button never leaves a person guessing, as Regenerate did
after a reload that forgot the typed key.
"""

from __future__ import annotations

from lib.engine.client import Connection

RUN_GOING = "A run is going: pause or cancel it first (its live panel is on the Run page)."
RUN_GOING_HERE = "A run of this list is going: it must end (or be cancelled) before another starts."
MODEL_SHUT_DOWN = "The model is shut down: choose another in the sidebar."
NOT_FITTED = "Fit the prompt to the file's columns first: every placeholder needs a column (above)."
NO_SAMPLE = "Choose the sample rows to try first."
NO_URL_COLUMN = "Choose the column that holds the website addresses first."
READING_WEBSITES = "Fixed while the websites are being read: pause or cancel the reading to change it."
EDITED = "You edited this answer: edit it again, or accept it."
NONE_PICKED = "Pick the flagged rows to ask again first."
CHOSEN = "This is the prompt the run uses already."
ONE_VARIANT = "Only one try so far: add another to compare answers."
NOT_FROM_LIBRARY = (
    "Only a prompt opened from the library gets new versions, under its own name: use Save as a new prompt."
)
FROM_SCHEMA = "Set by the prompt's JSON schema: its properties are the output columns."
PROMPT_PROBLEM = "The prompt cannot be used as it is: the message under the editor says why."


def no_connection(conn: Connection) -> str | None:
    """Why nothing can be sent from this tab, or None when something can."""
    if conn.endpoint is not None:
        return None
    why = (conn.why_none or "").strip()
    if why:
        return f"Nothing can be sent: {why[0].lower()}{why[1:]}"
    return (
        "Nothing can be sent: this tab has no API key (a reload forgets a key typed before). Type it in the "
        "sidebar, add OPENAI_API_KEY to .env, or switch on the offline demo."
    )


def why(*reasons: str | None) -> str | None:
    """The first reason that holds (reasons that do not hold are None)."""
    return next((r for r in reasons if r), None)


def when(condition: bool, reason: str) -> str | None:
    """`reason` if `condition` holds: why(when(busy, RUN_GOING), no_connection(conn))."""
    return reason if condition else None
