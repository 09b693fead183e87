"""Which story versions the bot has already seen, so a restart does not re-alert them.

The library reports "new" and "updated" relative to its own memory, which a restart
wipes. This table is the durable memory: a story version (key, updated) is alerted only
if the table holds no version of that key at least as recent. Each row also keeps a
digest of the version's title, highlights and text (schema version 6), so the alert for
the next version can say which of them changed, however long ago the last one came.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.database import Database

__all__ = ["KnownStoryStore", "KnownVersion"]

_CHUNK = 500


class KnownVersion(NamedTuple):
    """A story version and digests of its parts; a digest is None when it was recorded
    before digests were kept (or by a caller that has none)."""

    key: str
    updated: datetime
    title: str | None = None
    highlights: str | None = None
    body: str | None = None

    @property
    def has_digests(self) -> bool:
        return None not in (self.title, self.highlights, self.body)


class KnownStoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._t = db.tables.known_stories

    async def is_empty(self) -> bool:
        async with self._db.read() as conn:
            return not (await conn.execute(select(func.count()).select_from(self._t))).scalar()

    async def versions(self, keys: Iterable[str]) -> dict[str, KnownVersion]:
        """The latest known version per key, with its digests (missing keys are absent)."""
        t = self._t
        wanted = list(dict.fromkeys(keys))
        found: dict[str, KnownVersion] = {}
        async with self._db.read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                rows = (await conn.execute(
                    select(t.c.key, t.c.updated, t.c.title_digest, t.c.highlights_digest,
                           t.c.body_digest).where(t.c.key.in_(chunk))
                )).all()
                found.update({row[0]: KnownVersion(*row) for row in rows})
        return found

    async def known(self, keys: Iterable[str]) -> dict[str, datetime]:
        """The latest known ``updated`` per key (missing keys are absent)."""
        return {key: version.updated for key, version in (await self.versions(keys)).items()}

    async def unseen(self, versions: Sequence[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        """The (key, updated) versions newer than anything recorded for their key."""
        known = await self.known(k for k, _ in versions)
        return [(k, u) for k, u in versions if k not in known or u > known[k]]

    async def remember_in(self, conn: AsyncConnection,
                          versions: Sequence[tuple[str, datetime] | KnownVersion],
                          now: datetime) -> None:
        """Record versions, keeping the newest ``updated`` per key; digests given for the
        version already recorded without them are filled in."""
        if not versions:
            return
        newest: dict[str, KnownVersion] = {}
        for given in versions:
            version = KnownVersion(*given)
            held = newest.get(version.key)
            if held is None or version.updated > held.updated or (
                    version.updated == held.updated and version.has_digests):
                newest[version.key] = version
        t = self._t
        stmt = self._db.insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key"],
            set_={"updated": stmt.excluded.updated, "seen_at": stmt.excluded.seen_at,
                  "title_digest": stmt.excluded.title_digest,
                  "highlights_digest": stmt.excluded.highlights_digest,
                  "body_digest": stmt.excluded.body_digest},
            where=or_(t.c.updated < stmt.excluded.updated,
                      and_(t.c.updated == stmt.excluded.updated, t.c.title_digest.is_(None),
                           stmt.excluded.title_digest.is_not(None))),
        )
        await conn.execute(stmt, [
            {"key": v.key, "updated": v.updated, "seen_at": now, "title_digest": v.title,
             "highlights_digest": v.highlights, "body_digest": v.body}
            for v in newest.values()])

    async def remember(self, versions: Sequence[tuple[str, datetime] | KnownVersion],
                       now: datetime) -> None:
        async with self._db.engine.begin() as conn:
            await self.remember_in(conn, versions, now)
