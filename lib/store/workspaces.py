"""Workspaces as the store keeps them: an id, two times and the JSON lib.workspace writes (it owns the shape)."""

from __future__ import annotations

from lib.store.db import Database


class WorkspaceRows:
    """The workspaces table."""

    def __init__(self, db: Database):
        self._db = db

    def save(self, ws_id: str, created_at: float, updated_at: float, data_json: str) -> None:
        self._db.write(
            [
                (
                    "INSERT INTO workspaces (id, created_at, updated_at, data_json) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET updated_at = excluded.updated_at, data_json = excluded.data_json",
                    (ws_id, created_at, updated_at, data_json),
                )
            ]
        )

    def get(self, ws_id: str) -> str | None:
        rows = self._db.read("SELECT data_json FROM workspaces WHERE id = ?", (ws_id,))
        return rows[0][0] if rows else None

    def recent(self, limit: int) -> list[str]:
        rows = self._db.read("SELECT data_json FROM workspaces ORDER BY updated_at DESC LIMIT ?", (limit,))
        return [r[0] for r in rows]

    def delete(self, ws_id: str) -> None:
        self._db.write([("DELETE FROM workspaces WHERE id = ?", (ws_id,))])

    def upload_in_use(self, digest: str) -> bool:
        """Whether any workspace's lead file is the upload with this digest."""
        rows = self._db.read(
            "SELECT 1 FROM workspaces WHERE json_extract(data_json, '$.lead.digest') = ? LIMIT 1", (digest,)
        )
        return bool(rows)
