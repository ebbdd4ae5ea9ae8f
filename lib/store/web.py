"""Websites read (lib.web): each reading kept a week, so a rerun does not read the site again."""

from __future__ import annotations

import time

from lib.store.db import Database
from lib.store.records import WebPage


class WebPages:
    """The web_pages table."""

    def __init__(self, db: Database):
        self._db = db

    def get(self, cache_key: str, max_age_s: float) -> WebPage | None:
        """The stored reading of a website, when it is younger than `max_age_s`."""
        rows = self._db.read(
            "SELECT cache_key, url, final_url, text, error, fetched_at FROM web_pages "
            "WHERE cache_key = ? AND fetched_at >= ?",
            (cache_key, time.time() - max_age_s),
        )
        return WebPage(*rows[0]) if rows else None

    def save(self, page: WebPage) -> None:
        self._db.write(
            [
                (
                    "INSERT OR REPLACE INTO web_pages VALUES (?, ?, ?, ?, ?, ?)",
                    (page.cache_key, page.url, page.final_url, page.text, page.error, page.fetched_at),
                )
            ]
        )
