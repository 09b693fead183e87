"""Keeping the story library current: the periodic rescan job and /reload."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from bot.stories.library import RescanReport, StoryFolderError, StoryIndexError
from bot.stories.model import Story
from bot.telegram.context import BotContext, BotServices

__all__ = ["CATCH_UP_WINDOW", "catch_up_stories", "rescan_job", "rescan_stories"]

log = logging.getLogger(__name__)

CATCH_UP_WINDOW = timedelta(days=7)
"""How far back a start looks for story versions no alert was planned for: the archive
can hold a million stories, and an alert about a story older than this is news to no one."""
_FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


async def rescan_stories(services: BotServices, names: Iterable[str] | None = None
                         ) -> RescanReport | None:
    """Rescan the folder (or only the ``names`` a watcher saw change) off the event loop
    and plan alerts for what is new; each rejection is logged once.

    None when the folder cannot be read or the index not written (a full disk): the
    stories indexed before stay.
    """
    library = services.library
    try:
        report = await asyncio.to_thread(
            library.rescan if names is None else lambda: library.rescan_names(names))
    except (StoryFolderError, StoryIndexError) as error:
        log.warning("story rescan failed: %s", error)  # the stories indexed so far stay
        return None
    for rejection in report.rejected:
        log.warning("story rejected %s", rejection)
    if services.engine is not None and (report.new or report.updated):
        await services.engine.alerts.plan(report.new, report.updated, services.clock())
    if report.changed:
        log.info("stories rescanned new=%d updated=%d removed=%d total=%d", len(report.new),
                 len(report.updated), len(report.removed), services.library.count())
    return report


async def catch_up_stories(services: BotServices) -> list[Story]:
    """The stories a start checks for alerts missed while the bot was down: those updated
    within :data:`CATCH_UP_WINDOW`, read from the index off the event loop."""
    library = services.library
    since = services.clock() - CATCH_UP_WINDOW
    return await asyncio.to_thread(library.updated_between, since, _FAR_FUTURE)


async def rescan_job(context: BotContext) -> None:
    await rescan_stories(context.services)
