"""What the app says about a session's connection: the demo switch's default, the status line, the sending
line beside every action. The connection itself is chosen by lib.engine.client.choose_connection."""

from __future__ import annotations

from lib.engine.client import Connection
from lib.views.labels import md_escape

NO_KEY = "No API key. Type one below, add OPENAI_API_KEY to .env, or use the offline demo."


def demo_mode(chosen: bool | None, env_has_key: bool) -> bool:
    """Whether the session uses the offline demo: as the user chose, else only when no key is configured."""
    return (not env_has_key) if chosen is None else chosen


def sending_markdown(conn: Connection) -> str:
    """The sending line as Markdown: escaped, the URL as code so it is not turned into a link."""
    text = md_escape(conn.sending_line())
    if conn.url:
        text = text.replace(md_escape(conn.url), "`" + conn.url.replace("`", "") + "`")
    return text


def key_status(conn: Connection, running: str | None = None) -> str:
    """The sidebar's line under the connection settings, as Markdown.

    `running`: where the workspace's going run sends (lib.views.running.run_connection). It is said first,
    so the line never reads "No API key" under a run that is visibly sending (a reload forgets a typed
    key; the run started with it goes on)."""
    if conn.demo:
        mine = "Offline demo: answers are simulated by the built-in local server."
    elif conn.endpoint is None:
        mine = md_escape(conn.why_none or NO_KEY)
    else:
        mine = sending_markdown(conn)
    if running is None or (conn.endpoint is not None and conn.endpoint.describe() == running):
        return mine
    if conn.demo and running.startswith("the offline demo"):
        return mine
    said = f"The run going now sends to {md_escape(running)}."
    if conn.endpoint is None:
        return (
            f"{said} This tab has no key of its own (a reload forgets a typed key): type it again to start "
            "or resume anything from here, or add OPENAI_API_KEY to .env."
        )
    return f"{said}  \nNew requests from this tab: {mine}"
