"""What the client learnt about an endpoint: a model's request shape (from a server's 400), and the
endpoint's model list (GET /v1/models), kept so the next run need not learn or ask again."""

from __future__ import annotations

import json
import time

from lib.store.db import Database


class Endpoints:
    """The model_shapes and endpoint_models tables."""

    def __init__(self, db: Database):
        self._db = db

    def shape_fixes(self, endpoint: str, model: str) -> dict | None:
        rows = self._db.read(
            "SELECT fixes_json FROM model_shapes WHERE endpoint = ? AND model = ?", (endpoint, model)
        )
        return json.loads(rows[0][0]) if rows else None

    def save_shape_fixes(self, endpoint: str, model: str, fixes: dict, note: str | None) -> None:
        self._db.write(
            [
                (
                    "INSERT OR REPLACE INTO model_shapes VALUES (?, ?, ?, ?, ?)",
                    (endpoint, model, json.dumps(fixes, ensure_ascii=False), time.time(), note),
                )
            ]
        )

    def models_listing(self, endpoint: str, max_age_s: float) -> list[dict] | None:
        rows = self._db.read(
            "SELECT models_json FROM endpoint_models WHERE endpoint = ? AND fetched_at >= ?",
            (endpoint, time.time() - max_age_s),
        )
        return json.loads(rows[0][0]) if rows else None

    def save_models_listing(self, endpoint: str, models: list[dict]) -> None:
        self._db.write(
            [
                (
                    "INSERT OR REPLACE INTO endpoint_models VALUES (?, ?, ?)",
                    (endpoint, time.time(), json.dumps(models, ensure_ascii=False)),
                )
            ]
        )
