"""Keeping the story library current: the periodic rescan job and /reload."""

from __future__ import annotations

import asyncio
import logging

from bot.stories.library import RescanReport, StoryFolderError
from bot.telegram.context import BotContext, BotServices

__all__ = ["prepare_search_job", "rescan_job", "rescan_stories"]

log = logging.getLogger(__name__)


async def rescan_stories(services: BotServices) -> RescanReport | None:
    """Rescan the folder off the event loop; each rejection is logged once.

    None when the folder itself cannot be read (the loaded stories stay).
    """
    try:
        report = await asyncio.to_thread(services.library.rescan)
    except StoryFolderError as error:
        log.warning("story rescan failed: %s", error)
        return None
    for rejection in report.rejected:
        log.warning("story rejected %s", rejection)
    if services.engine is not None and (report.new or report.updated):
        await services.engine.alerts.plan(report.new, report.updated, services.clock())
    if report.changed:
        log.info("stories rescanned new=%d updated=%d removed=%d total=%d", len(report.new),
                 len(report.updated), len(report.removed), len(services.library.stories))
    return report


async def prepare_search_job(context: BotContext) -> None:
    """Once after a start: build every story's search words off the event loop. (After a
    rescan only the few new versions lack them, which a search builds cheaply itself.)"""
    built = await asyncio.to_thread(context.services.library.prepare_search)
    log.info("search prepared for %d stories", built)


async def rescan_job(context: BotContext) -> None:
    await rescan_stories(context.services)
