"""Keeping the story library current: the periodic rescan job and /reload."""

from __future__ import annotations

import asyncio
import logging

from bot.stories.library import RescanReport, StoryFolderError
from bot.telegram.context import BotContext, BotServices

__all__ = ["rescan_job", "rescan_stories"]

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


async def rescan_job(context: BotContext) -> None:
    await rescan_stories(context.services)
