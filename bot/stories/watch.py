"""Noticing story files as they change: inotify through ``watchfiles``.

A batch of changes (grouped for at most :data:`DEBOUNCE_MS`, so a file written in several
steps is read once it is complete) hands the names of the story files it touched to a
callback, which rescans just those. Nothing runs while nothing changes: the watcher waits
in a thread of ``watchfiles``' own, woken by the kernel.

inotify does not fire for changes made on another machine of a network file system
(NFS, SMB): there the periodic full rescan is what notices them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

# The watcher under watchfiles.awatch, used directly to know when the watch is in place
# and to wait in a thread of our own (arguments: paths, debug, force_polling,
# poll_delay_ms, recursive, ignore_permission_denied).
from watchfiles._rust_notify import RustNotify

from bot.stories.naming import is_story_file_name

__all__ = ["DEBOUNCE_MS", "StoryWatcher"]

_LOG = logging.getLogger(__name__)

DEBOUNCE_MS: Final = 500
"""Longest time changes are grouped before they are handed on."""
_STEP_MS: Final = 200  # a batch ends after this long without a further change; also how
# often the waiting thread wakes to look at the stop flag (idle CPU stays near nothing)
_RETRY_SECONDS: Final = 30.0  # after the watch failed (folder gone, too many watches)


class StoryWatcher:
    """Watches one folder (not its subfolders) and calls ``on_change`` with the names of
    the story files that changed, one batch at a time. :meth:`start` and :meth:`stop`
    from the event loop; the wait itself runs in a thread of the watcher's own."""

    def __init__(self, folder: Path, on_change: Callable[[set[str]], Awaitable[object]], *,
                 debounce_ms: int = DEBOUNCE_MS) -> None:
        self.folder = folder
        self._directory = os.path.abspath(folder)  # noqa: PTH100 - compared as text
        self._on_change = on_change
        self._debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        """Set once the watch is in place: every change after this is seen."""

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="story-watch")

    async def stop(self) -> None:
        self._stop.set()  # the waiting thread returns within a step
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._watch()
            except Exception as error:  # the periodic rescan still runs
                _LOG.warning("watching the story folder %s failed (%s); the periodic "
                             "rescan still runs, watching again in %.0f s", self.folder,
                             error, _RETRY_SECONDS)
                await _in_daemon_thread(self._stop.wait, _RETRY_SECONDS)

    async def _watch(self) -> None:
        with RustNotify([self._directory], False, False, 300, False, False) as watcher:
            self.ready.set()
            _LOG.info("watching story folder %s for changes", self.folder)
            while True:
                raw = await _in_daemon_thread(watcher.watch, self._debounce_ms, _STEP_MS, 0,
                                              self._stop)
                if raw == "stop":
                    return
                if isinstance(raw, str):  # "timeout" or "signal": wait again
                    continue
                names = {name for _, path in raw
                         for directory, name in [os.path.split(path)]
                         if directory == self._directory and is_story_file_name(name)}
                if names:
                    try:
                        await self._on_change(names)
                    except Exception:
                        _LOG.exception("handling changed story files failed")


def _in_daemon_thread(function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """``function(*args)`` in a daemon thread of its own: a bot that ends without stopping
    the watcher (a failed start) must not hang at exit waiting for it, as it would for a
    thread of an executor."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():  # cancelled meanwhile
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as error:  # handed to the waiting task
            loop.call_soon_threadsafe(settle, None, error)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="story-watch", daemon=True).start()
    return future
