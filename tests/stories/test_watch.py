"""Watching the folder: new, changed and removed files reach the index as they happen."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.stories.library import RescanReport, StoryLibrary
from bot.stories.watch import StoryWatcher

UTC = ZoneInfo("UTC")


def write(folder: Path, name: str, title: str) -> Path:
    path = folder / name
    path.write_text(f"Apr 2, 2025, 9:00 AM\n\n{title}\n\nHighlights\n• {title} bullet\n"
                    "Story\n\nBody.\n")
    return path


async def test_new_changed_and_removed_files_are_seen_without_a_rescan(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    library = StoryLibrary(folder, UTC)
    library.rescan()
    reports: asyncio.Queue[tuple[set[str], RescanReport]] = asyncio.Queue()

    async def on_change(names: set[str]) -> None:
        await reports.put((names, await asyncio.to_thread(library.rescan_names, names)))

    watcher = StoryWatcher(folder, on_change)
    watcher.start()
    try:
        await asyncio.wait_for(watcher.ready.wait(), 10)
        path = write(folder, "1_aaaaaaaa01.txt", "Arrived")
        (folder / "notes.md").write_text("not a story")  # neither of these is handed on
        (folder / "sub").mkdir()
        write(folder / "sub", "2_aaaaaaaa02.txt", "In a subfolder")

        names, report = await asyncio.wait_for(reports.get(), 10)
        assert names == {"1_aaaaaaaa01.txt"}
        assert [s.title for s in report.new] == ["Arrived"]
        assert [s.title for s in library.latest(0, 5)] == ["Arrived"]

        tmp = folder / ".1_aaaaaaaa01.txt.part"  # the pipeline's atomic rewrite
        tmp.write_text(path.read_text().replace("Arrived", "Rewritten"))
        tmp.replace(path)
        while True:  # the rename may come as one batch or as two
            names, report = await asyncio.wait_for(reports.get(), 10)
            if report.updated:
                break
        assert [s.title for s in report.updated] == ["Rewritten"]

        path.unlink()
        names, report = await asyncio.wait_for(reports.get(), 10)
        assert [s.key for s in report.removed] == ["aaaaaaaa01"]
        assert library.count() == 0
    finally:
        await watcher.stop()
    assert reports.empty()


async def test_a_folder_that_cannot_be_watched_is_retried_not_fatal(tmp_path: Path) -> None:
    calls: list[set[str]] = []

    async def on_change(names: set[str]) -> None:
        calls.append(names)

    watcher = StoryWatcher(tmp_path / "missing", on_change)
    watcher.start()
    await asyncio.sleep(0)  # the first attempt fails at once, inside the task
    await watcher.stop()  # and stopping does not wait out the retry delay
    assert calls == [] and not watcher.ready.is_set()


_NEVER_STOPPED = """
import asyncio, sys
from pathlib import Path
from bot.stories.watch import StoryWatcher
async def main():
    async def on_change(names): pass
    watcher = StoryWatcher(Path(sys.argv[1]), on_change)
    watcher.start()
    await watcher.ready.wait()
    raise SystemExit(3)  # a start that fails after the watch began: nobody stops it
asyncio.run(main())
"""


def test_a_process_whose_watcher_was_never_stopped_still_exits(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _NEVER_STOPPED, str(tmp_path)],
                          cwd=Path(__file__).resolve().parents[2], timeout=30, check=False)
    assert done.returncode == 3
