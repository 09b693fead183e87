"""The persistent story index: restarts, damage, a full disk, sharing, order and paging."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.stories.library as library_module
from bot.errors import StoryError
from bot.stories.index import APPLICATION_ID, StoryIndex
from bot.stories.library import StoryIndexError, StoryLibrary
from bot.stories.model import Story, sorted_latest
from bot.stories.parser import parse_story

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
ROOT = Path(__file__).resolve().parents[2]


def write(folder: Path, name: str, title: str, stamp: str = "Apr 2, 2025, 9:00 AM",
          body: str = "Body text.") -> Path:
    path = folder / name
    path.write_text(f"{stamp}\n\n{title}\n\nHighlights\n• {title} bullet\nStory\n\n{body}\n")
    return path


def bump(path: Path) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the library parses from now on."""
    names: list[str] = []
    real = parse_story

    def counting(data: bytes, name: str, tz: ZoneInfo) -> Story:
        names.append(name)
        return real(data, name, tz)

    monkeypatch.setattr(library_module, "parse_story", counting)
    return names


def test_a_restart_with_an_unchanged_folder_reparses_nothing(
        story_folder: Path, tmp_path: Path, parsed: list[str]) -> None:
    index = tmp_path / "index.sqlite3"
    first = StoryLibrary(story_folder, UTC_ZONE, index_path=index)
    first.rescan()
    assert len(parsed) == len(list(story_folder.glob("*.txt")))
    titles = [s.title for s in first.stories]
    first.close()

    parsed.clear()
    again = StoryLibrary(story_folder, UTC_ZONE, index_path=index)
    report = again.rescan()
    assert parsed == []
    assert not report.changed and [s.title for s in again.stories] == titles

    changed = write(story_folder, "1_5f0c2a9e41d7b3c8.txt", "Rewritten while the bot was down")
    bump(changed)
    restarted = StoryLibrary(story_folder, UTC_ZONE, index_path=index)
    report = restarted.rescan()
    assert parsed == ["1_5f0c2a9e41d7b3c8.txt"]  # only the file that changed
    assert restarted.get("5f0c2a9e41d7b3c8").title == "Rewritten while the bot was down"  # type: ignore[union-attr]


def test_a_rejected_file_keeps_its_last_good_version_across_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    path = write(folder, "1_aaaaaaaa01.txt", "Good version")
    index = tmp_path / "index.sqlite3"
    StoryLibrary(folder, UTC_ZONE, index_path=index).rescan()
    path.write_text("half-written")
    bump(path)
    library = StoryLibrary(folder, UTC_ZONE, index_path=index)
    report = library.rescan()
    assert [str(e).split(":")[:2] for e in report.rejected] == [["1_aaaaaaaa01.txt", "1"]]
    assert [s.title for s in library.stories] == ["Good version"]
    assert [s.title for s in library.search("good")] == ["Good version"]

    path.unlink()
    library.rescan()
    assert library.count() == 0 and library.rejections == ()


@pytest.mark.parametrize("damage", ["garbage", "foreign", "old schema"])
def test_an_unusable_index_file_is_moved_aside_and_rebuilt_with_a_warning(
        story_folder: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index.sqlite3"
    if damage == "garbage":
        index.write_bytes(b"not a database at all " * 500)
    else:
        conn = sqlite3.connect(index)
        conn.execute("CREATE TABLE precious (x)")
        conn.execute("INSERT INTO precious VALUES (1)")
        if damage == "old schema":
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute("PRAGMA user_version = 0")
        conn.commit()
        conn.close()
    with caplog.at_level(logging.WARNING, logger="bot.stories.index"):
        library = StoryLibrary(story_folder, UTC_ZONE, index_path=index)
        library.rescan()
    assert library.count() == len(list(story_folder.glob("*.txt")))
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "unusable" in warning.getMessage() and "rebuilt" in warning.getMessage()
    aside = tmp_path / "index.sqlite3.replaced"
    assert aside.exists()  # nothing of somebody else's is deleted
    if damage != "garbage":
        assert sqlite3.connect(aside).execute("SELECT x FROM precious").fetchone() == (1,)


def test_an_index_built_for_another_folder_or_zone_is_rebuilt(
        story_folder: Path, tmp_path: Path) -> None:
    index = tmp_path / "index.sqlite3"
    other = tmp_path / "other"
    other.mkdir()
    write(other, "1_bbbbbbbb01.txt", "Elsewhere")
    StoryLibrary(other, UTC_ZONE, index_path=index).rescan()
    library = StoryLibrary(story_folder, UTC_ZONE, index_path=index)
    library.rescan()
    assert library.get("bbbbbbbb01") is None
    assert library.count() == len(list(story_folder.glob("*.txt")))
    berlin = StoryLibrary(story_folder, BERLIN, index_path=index)
    berlin.rescan()  # the files are read again: their wall times are Berlin's now
    newest = berlin.latest(0, 1)[0]
    again = parse_story((story_folder / newest.source).read_bytes(), newest.source, BERLIN)
    assert newest.updated.isoformat() == again.updated.isoformat()


def test_a_full_disk_while_indexing_leaves_the_previous_index_usable(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_aaaaaaaa01.txt", "Indexed before the disk filled")
    library = StoryLibrary(folder, UTC_ZONE, index_path=tmp_path / "index.sqlite3")
    library.rescan()
    for number in range(300):
        write(folder, f"{100 + number}_cc{number:08x}.txt", f"Arrival {number}",
              body="Long text about the harbour and the ferry. " * 40)
    conn = library.index.connection()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 20}")  # the disk fills up
    with pytest.raises(StoryIndexError, match="full"):
        library.rescan()
    reader = StoryIndex(library.index.path, folder=folder, tz=UTC_ZONE)  # another process
    assert reader.get("aaaaaaaa01") is not None
    assert reader.connection().execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert [s.title for s in library.search("indexed")] == ["Indexed before the disk filled"]

    conn.execute("PRAGMA max_page_count = 1073741823")  # space again
    library.rescan()
    assert library.count() == 301
    assert len(library.search("arrival")) == 300


_INDEXER = """
import sys, time
from pathlib import Path
from zoneinfo import ZoneInfo
from bot.stories.library import StoryLibrary
folder, index, flags, me = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
library = StoryLibrary(folder, ZoneInfo("UTC"), index_path=index)
(flags / f"ready-{me}").touch()
while not (flags / "go").exists():
    time.sleep(0.005)
library.rescan()
print(library.count())
"""


def test_two_processes_indexing_one_file_at_once_leave_it_whole(tmp_path: Path) -> None:
    folder, flags = tmp_path / "stories", tmp_path / "flags"
    folder.mkdir()
    flags.mkdir()
    for number in range(600):
        write(folder, f"{number}_dd{number:08x}.txt", f"Shared story {number}",
              f"Apr {1 + number % 28}, 2025, 9:{number % 60:02d} AM")
    index = tmp_path / "index.sqlite3"
    children = [subprocess.Popen([sys.executable, "-c", _INDEXER, str(folder), str(index),
                                  str(flags), str(me)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for me in (1, 2)]
    deadline = time.monotonic() + 30
    while not all((flags / f"ready-{me}").exists() for me in (1, 2)):  # both opened it
        assert time.monotonic() < deadline and all(c.poll() is None for c in children)
        time.sleep(0.005)
    (flags / "go").touch()  # both index the whole folder at once
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert out.strip() == "600"
    mine = StoryLibrary(folder, UTC_ZONE, index_path=index)
    conn = mine.index.connection()
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.execute("INSERT INTO search (search, rank) VALUES ('integrity-check', 0)")
    mine.rescan()
    assert mine.count() == 600
    assert len(mine.search("shared")) == 600
    assert [s.title for s in mine.search('"shared story 599"')] == ["Shared story 599"]


def test_changes_another_process_made_are_reported_to_each_library(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_aaaaaaaa01.txt", "First")
    index = tmp_path / "index.sqlite3"
    delivery = StoryLibrary(folder, UTC_ZONE, index_path=index)
    updates = StoryLibrary(folder, UTC_ZONE, index_path=index)
    delivery.rescan()
    updates.rescan()
    write(folder, "2_aaaaaaaa02.txt", "Second")
    assert [s.title for s in updates.rescan().new] == ["Second"]  # indexed by `updates`
    assert [s.title for s in delivery.rescan().new] == ["Second"]  # still news here
    assert not delivery.rescan().changed


def test_removed_stories_are_reported_as_they_were(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    path = write(folder, "1_aaaaaaaa01.txt", "Going away")
    library = StoryLibrary(folder, UTC_ZONE)
    library.rescan()
    path.unlink()
    [gone] = library.rescan().removed
    assert (gone.key, gone.title, gone.highlights) == ("aaaaaaaa01", "Going away",
                                                       ("Going away bullet",))


# -- order, paging and times, against what the parser says -------------------------------
_STAMPS = st.builds(
    lambda month, day, hour, minute, pm: f"{month} {day}, 2025, {hour}:{minute:02d} "
                                         f"{'PM' if pm else 'AM'}",
    st.sampled_from(["Mar", "Oct"]), st.sampled_from([26, 30, 31]), st.integers(1, 3),
    st.sampled_from([0, 30]), st.booleans())  # few values: many ties, DST gaps and folds
_NAMES = st.one_of(
    st.builds(lambda seq, key: f"{seq}_{key}.txt", st.integers(0, 3),
              st.text("0123456789abcdef", min_size=8, max_size=10)),
    st.builds(lambda word: f"{word}.txt", st.text("abcXY -", min_size=1, max_size=6)))


def _expected(folder: Path, zone: ZoneInfo) -> list[Story]:
    """Latest order from the parser and the duplicate rule, without any index."""
    winners: dict[str, tuple[Story, str]] = {}
    for path in sorted(folder.glob("*.txt")):
        try:
            story = parse_story(path.read_bytes(), path.name, zone)
        except StoryError:  # rejected files are not stories
            continue
        held = winners.get(story.key)
        if held is None or (story.updated, path.name) >= (held[0].updated, held[1]):
            winners[story.key] = (story, path.name)
    return sorted_latest(s for s, _ in winners.values())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(_NAMES, _STAMPS, min_size=1, max_size=12),
       zone=st.sampled_from([UTC_ZONE, BERLIN, ZoneInfo("America/New_York")]))
def test_latest_order_paging_positions_and_times_match_the_parser(
        tmp_path_factory: pytest.TempPathFactory, files: dict[str, str], zone: ZoneInfo
) -> None:
    folder = tmp_path_factory.mktemp("stories")
    for name, stamp in files.items():
        write(folder, name, f"Title of {name}", stamp)
    library = StoryLibrary(folder, zone)
    library.rescan()
    expected = _expected(folder, zone)
    got = list(library.stories)
    assert [s.key for s in got] == [s.key for s in expected]
    # times come back as the parser made them: same instant, zone and printed offset
    assert [(s.updated.isoformat(), s.published.isoformat()) for s in got] == [
        (s.updated.isoformat(), s.published.isoformat()) for s in expected]
    assert all(s.updated.tzinfo == zone for s in got)
    assert [s.key for s in library.index.iter_latest(batch=2)] == [s.key for s in expected]
    for place, story in enumerate(expected):
        assert library.position_of(story.key) == place
        assert [s.key for s in library.latest(place, 1)] == [story.key]
    library.close()


def test_updated_between_takes_the_window_in_latest_order(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    for number, stamp in enumerate(("Apr 1, 2025, 9:00 AM", "Apr 2, 2025, 9:00 AM",
                                    "Apr 3, 2025, 9:00 AM", "Apr 4, 2025, 9:00 AM")):
        write(folder, f"{number}_ee{number:08x}.txt", f"Day {number + 1}", stamp)
    library = StoryLibrary(folder, UTC_ZONE)
    library.rescan()
    since, until = datetime(2025, 4, 2, 9, tzinfo=UTC), datetime(2025, 4, 4, 9, tzinfo=UTC)
    assert [s.title for s in library.updated_between(since, until)] == ["Day 4", "Day 3"]


def test_export_streams_without_holding_the_archive(story_folder: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    library = StoryLibrary(story_folder, UTC_ZONE)
    library.rescan()
    batches: list[int] = []
    real = library.index.iter_latest

    def spying(batch: int = 500) -> Iterator[Story]:
        batches.append(batch)
        return real(batch=4)

    monkeypatch.setattr(library.index, "iter_latest", spying)
    streamed = list(library.iter_stories())
    assert batches == [500]
    assert streamed == list(library.latest(0, 1000))


def test_a_rewrite_of_the_same_size_is_seen_by_its_modification_time(tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    path = write(folder, "1_aaaaaaaa01.txt", "Ferry news")
    index = tmp_path / "index.sqlite3"
    StoryLibrary(folder, UTC_ZONE, index_path=index).rescan()
    write(folder, "1_aaaaaaaa01.txt", "Barge news")  # same size
    bump(path)
    for library in (StoryLibrary(folder, UTC_ZONE, index_path=index),  # a restart
                    StoryLibrary(folder, UTC_ZONE, index_path=index)):  # and a rescan
        library.rescan()
        assert [s.title for s in library.stories] == ["Barge news"]


def test_names_and_link_targets_that_are_not_utf8_do_not_stop_the_index(
        tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    write(folder, "1_aaaaaaaa01.txt", "Good story")
    latin1 = folder / os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes in the name
    latin1.write_bytes((folder / "1_aaaaaaaa01.txt").read_bytes())
    (folder / "linked.txt").symlink_to(latin1)
    index = tmp_path / "index.sqlite3"
    for _ in range(2):  # a first build, then a restart that finds the same
        library = StoryLibrary(folder, UTC_ZONE, index_path=index)
        library.rescan()
        assert [e.line for e in library.rejections] == [1]
        assert "UTF-8" in library.rejections[0].message
        assert sorted(s.key for s in library.stories) == ["aaaaaaaa01", "linked"]
