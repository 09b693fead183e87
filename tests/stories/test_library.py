"""The story library: loading, incremental rescans, lookup, search and hostile folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.stories.library import StoryFolderError, StoryLibrary
from tests.conftest import INVALID_STORIES

UTC = ZoneInfo("UTC")


def write(folder: Path, name: str, title: str, stamp: str = "Apr 2, 2025, 9:00 AM",
          body: str = "Body text.") -> Path:
    path = folder / name
    path.write_text(f"{stamp}\n\n{title}\n\nHighlights\n• {title} bullet\nStory\n\n{body}\n")
    return path


def bump(path: Path) -> None:
    """Make a rewrite visible even on file systems with coarse modification times."""
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))


def loaded(folder: Path) -> StoryLibrary:
    library = StoryLibrary(folder, UTC)
    library.rescan()
    return library


def test_samples_load_in_latest_order(story_folder: Path) -> None:
    library = loaded(story_folder)
    assert [s.seq for s in library.stories][:3] == [13, 1, 2]
    assert library.stories[-1].key == "press-release-harbour-authority"
    assert library.rejections == ()


def test_invalid_folder_reports_each_file_once_and_keeps_the_duplicate_winner() -> None:
    library = loaded(INVALID_STORIES)
    expected = (INVALID_STORIES / "expected-errors").read_text().splitlines()
    got = [str(error) for error in library.rejections]
    assert [line.split(":")[:2] for line in got] == [line.split(":")[:2] for line in expected]
    assert [s.title for s in library.stories] == ["Newer copy"]


def test_rescan_reports_new_updated_removed_and_rejected_once(story_folder: Path) -> None:
    library = loaded(story_folder)
    assert not library.rescan().changed

    fresh = write(story_folder, "100_00aa11bb22cc.txt", "Fresh story")
    report = library.rescan()
    assert [s.key for s in report.new] == ["00aa11bb22cc"]
    assert library.stories[0].title == "Fresh story"

    write(story_folder, "100_00aa11bb22cc.txt", "Fresh story, revised", "Apr 3, 2025, 9:00 AM")
    bump(fresh)
    report = library.rescan()
    assert [s.title for s in report.updated] == ["Fresh story, revised"]

    fresh.write_text("Apr 3, 2025, 9:00 AM\n\nHalf-writ")  # caught mid-write
    bump(fresh)
    report = library.rescan()
    assert [str(e) for e in report.rejected] == ["100_00aa11bb22cc.txt:1: no highlights and "
                                                 "no story text"]
    assert library.get("00aa11bb22cc") is not None  # last good version kept
    assert library.get("00aa11bb22cc").title == "Fresh story, revised"  # type: ignore[union-attr]
    assert library.rescan().rejected == ()  # reported once, not on every rescan
    assert len(library.rejections) == 1

    fresh.unlink()
    report = library.rescan()
    assert [s.key for s in report.removed] == ["00aa11bb22cc"]
    assert not library.rejections


def test_unchanged_files_are_not_read_again(story_folder: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    library = loaded(story_folder)
    reads: list[str] = []
    original = StoryLibrary._read

    def counting(self: StoryLibrary, path: str, name: str, size: int) -> object:
        reads.append(name)
        return original(self, path, name, size)

    monkeypatch.setattr(StoryLibrary, "_read", counting)
    write(story_folder, "200_ffee11223344.txt", "Only this one")
    library.rescan()
    assert reads == ["200_ffee11223344.txt"]


def test_lookup_by_position_id_key_prefix_and_words(story_folder: Path) -> None:
    library = loaded(story_folder)
    assert library.find("1").story == library.stories[0]
    assert library.find("15").story == library.stories[14]
    assert library.find("16").matches == ()
    assert library.find("000_99093b385269948a").story.key == "99093b385269948a"  # type: ignore[union-attr]
    assert library.find("99093b").story.key == "99093b385269948a"  # type: ignore[union-attr]
    assert library.find("PRESS-RELEASE-HARBOUR-AUTHORITY").kind == "id"
    write(story_folder, "300_99093b0000000000.txt", "Prefix twin")
    library.rescan()
    ambiguous = library.find("99093b")
    assert (ambiguous.kind, ambiguous.story) == ("prefix", None)
    assert sorted(s.key for s in ambiguous.matches) == ["99093b0000000000", "99093b385269948a"]


def test_search_needs_every_word_and_ranks_title_matches_first(tmp_path: Path) -> None:
    write(tmp_path, "1_aaaaaaaa01.txt", "Harbour news", "Apr 1, 2025, 9:00 AM",
          body="The ferry strike continues.")
    write(tmp_path, "2_aaaaaaaa02.txt", "Ferry strike ends", "Mar 1, 2025, 9:00 AM")
    write(tmp_path, "3_aaaaaaaa03.txt", "Ferry timetable", "Apr 5, 2025, 9:00 AM")
    library = loaded(tmp_path)
    assert [s.title for s in library.search("FERRY strike")] == [
        "Ferry strike ends", "Harbour news"]
    assert [s.title for s in library.search("ferr")] == [
        "Ferry timetable", "Ferry strike ends", "Harbour news"]
    assert library.search("ferry zebra") == ()
    assert library.search("  ") == ()
    assert library.find("../../etc/passwd").matches == ()


def test_search_follows_each_new_version_of_a_story(tmp_path: Path) -> None:
    path = write(tmp_path, "1_aaaaaaaa01.txt", "Harbour news", body="The ferry strike.")
    write(tmp_path, "2_aaaaaaaa02.txt", "Council budget")
    library = loaded(tmp_path)
    assert [s.title for s in library.search("ferry")] == ["Harbour news"]

    write(tmp_path, "1_aaaaaaaa01.txt", "Harbour news", body="The tram strike.")
    bump(path)
    library.rescan()
    assert library.search("ferry") == ()
    assert [s.title for s in library.search("tram")] == ["Harbour news"]


def test_hostile_folder_entries_do_not_stop_the_others(tmp_path: Path) -> None:
    write(tmp_path, "1_aaaaaaaa01.txt", "Good story")
    (tmp_path / "huge.txt").touch()
    os.truncate(tmp_path / "huge.txt", 2 * 1024**3)  # sparse 2 GB file: rejected unread
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    (tmp_path / "dir.txt").mkdir()
    (tmp_path / ".hidden.txt").write_text("ignored")
    (tmp_path / "notes.md").write_text("ignored")
    library = loaded(tmp_path)
    assert [s.title for s in library.stories] == ["Good story"]
    messages = {e.path: e.message for e in library.rejections}
    assert set(messages) == {"huge.txt", "binary.txt", "loop.txt"}
    assert "too large" in messages["huge.txt"]
    assert "UTF-8" in messages["binary.txt"]
    assert "loops back" in messages["loop.txt"]


def test_hostile_entries_that_change_are_picked_up_by_the_next_rescan(tmp_path: Path) -> None:
    write(tmp_path, "1_aaaaaaaa01.txt", "Good story")
    write(tmp_path, "2_aaaaaaaa02.txt", "Becomes a folder")
    (tmp_path / "loop.txt").symlink_to(tmp_path / "loop.txt")
    library = loaded(tmp_path)
    assert [e.path for e in library.rejections] == ["loop.txt"]
    assert library.rescan().rejected == ()  # reported once, still listed
    assert [e.path for e in library.rejections] == ["loop.txt"]

    (tmp_path / "loop.txt").unlink()
    write(tmp_path, "loop.txt", "Fixed story")
    (tmp_path / "2_aaaaaaaa02.txt").unlink()
    (tmp_path / "2_aaaaaaaa02.txt").mkdir()
    report = library.rescan()
    assert [s.title for s in report.new] == ["Fixed story"]
    assert [s.title for s in report.removed] == ["Becomes a folder"]
    assert library.rejections == ()

    (tmp_path / "again.txt").symlink_to(tmp_path / "again.txt")
    assert [e.path for e in library.rescan().rejected] == ["again.txt"]
    (tmp_path / "again.txt").unlink()
    library.rescan()
    assert library.rejections == ()
    assert [s.title for s in library.stories] == ["Good story", "Fixed story"]  # no seq: last


def test_a_file_deleted_between_listing_and_reading_is_simply_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "1_aaaaaaaa01.txt", "Stays")
    write(tmp_path, "2_aaaaaaaa02.txt", "Vanishes")
    original = os.open

    def racing_open(path: str, flags: int, *args: int) -> int:
        if path.endswith("2_aaaaaaaa02.txt"):
            Path(path).unlink()
        return original(path, flags, *args)

    monkeypatch.setattr(os, "open", racing_open)
    library = loaded(tmp_path)
    assert [s.title for s in library.stories] == ["Stays"]
    assert library.rejections == ()


@pytest.mark.parametrize("change", ["grows", "shrinks"])
def test_a_file_rewritten_between_listing_and_reading_is_read_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    path = write(tmp_path, "1_aaaaaaaa01.txt", "First draft", body="A medium body.")
    listed = path.stat().st_size
    final, body = ("Final version", "A much longer body. " * 40) if change == "grows" else (
        "Final", "Tiny.")
    original = os.open

    def racing_open(name: str, flags: int, *args: int) -> int:
        if name.endswith("1_aaaaaaaa01.txt") and final not in path.read_text():
            write(tmp_path, "1_aaaaaaaa01.txt", final, body=body)  # after the stat
        return original(name, flags, *args)

    monkeypatch.setattr(os, "open", racing_open)
    [story] = loaded(tmp_path).stories
    assert story.title == final and story.story == (body.strip(),)
    assert (path.stat().st_size > listed) == (change == "grows")  # the case it claims


def test_a_missing_or_unlistable_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoryFolderError, match="does not exist"):
        StoryLibrary(tmp_path / "missing", UTC).rescan()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoryFolderError, match="not a folder"):
        StoryLibrary(tmp_path / "file", UTC).rescan()


def test_a_folder_that_disappears_keeps_the_loaded_stories(story_folder: Path) -> None:
    library = loaded(story_folder)
    shutil.rmtree(story_folder)
    with pytest.raises(StoryFolderError):
        library.rescan()
    assert len(library.stories) == 15


def test_duplicate_keys_follow_incremental_changes(tmp_path: Path) -> None:
    older = write(tmp_path, "1_cafecafe01.txt", "Older copy", "Mar 1, 2025, 9:00 AM")
    write(tmp_path, "2_cafecafe01.txt", "Newer copy", "Mar 2, 2025, 9:00 AM")
    library = loaded(tmp_path)
    assert library.get("cafecafe01").title == "Newer copy"  # type: ignore[union-attr]
    assert [str(e) for e in library.rejections] == [
        "1_cafecafe01.txt:1: duplicate key cafecafe01 (kept 2_cafecafe01.txt)"]
    write(tmp_path, "1_cafecafe01.txt", "Older copy, now newest", "Mar 3, 2025, 9:00 AM")
    bump(older)
    report = library.rescan()
    assert [s.title for s in report.updated] == ["Older copy, now newest"]
    assert [str(e) for e in library.rejections] == [
        "2_cafecafe01.txt:1: duplicate key cafecafe01 (kept 1_cafecafe01.txt)"]
    older.unlink()
    report = library.rescan()
    assert [s.title for s in report.updated] == ["Newer copy"]
    assert library.rejections == () and len(library.stories) == 1


def test_incremental_order_matches_a_fresh_load(story_folder: Path) -> None:
    library = loaded(story_folder)
    for number, stamp in enumerate(("Jan 1, 2020, 1:00 AM", "Mar 31, 2025, 9:15 AM",
                                    "Dec 31, 2030, 11:59 PM")):
        write(story_folder, f"{50 + number}_ab{number:010x}.txt", f"Story {number}", stamp)
        library.rescan()
        assert library.stories == loaded(story_folder).stories
        assert [library.position_of(s.key) for s in library.stories] == list(
            range(len(library.stories)))
