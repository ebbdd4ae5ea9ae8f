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


def key_status(conn: Connection) -> str:
    """The sidebar's line under the connection settings, as Markdown."""
    if conn.demo:
        return "Offline demo: answers are simulated by the built-in local server."
    if conn.endpoint is None:
        return md_escape(conn.why_none or NO_KEY)
    return sending_markdown(conn)
