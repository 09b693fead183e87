"""Symbolic links in the story folder (STORY_FORMAT.md, "Links").

A link counts only when it resolves to a regular file inside the folder. Anything else is
rejected at line 1 without its target being opened: a link to ``/proc/self/environ`` must
not put the bot's token into a story or a message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.cli import main
from bot.stories.library import StoryLibrary
from tests.stories.test_library import loaded, write

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Secret payroll figures"
OUTSIDE = "link points outside the story folder"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A story folder with one good story, beside an ``outside`` folder holding a secret
    that would parse as a perfectly good story if it were ever read."""
    stories = tmp_path / "stories"
    stories.mkdir()
    write(stories, "1_aaaaaaaa01.txt", "Good story")
    (tmp_path / "outside").mkdir()
    write(tmp_path / "outside", "secret.txt", SECRET)
    return stories


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The real path of every file the library opens."""
    paths: list[str] = []
    original = os.open

    def spy(path: str, flags: int, *args: int) -> int:
        descriptor = original(path, flags, *args)
        paths.append(os.path.realpath(path))
        return descriptor

    monkeypatch.setattr(os, "open", spy)
    return paths


def titles(library: StoryLibrary) -> set[str]:
    return {story.title for story in library.stories}


@pytest.mark.parametrize("target", [
    "ABSOLUTE",  # replaced by the secret's absolute path
    "../outside/secret.txt",
    "./../stories/../outside/secret.txt",
    "hop",  # a link inside the folder that itself leads out
    "sub/secret.txt",  # through a subfolder link that leads out
])
def test_a_link_out_of_the_folder_is_rejected_and_its_target_never_opened(
        folder: Path, opened: list[str], target: str) -> None:
    secret = folder.parent / "outside" / "secret.txt"
    (folder / "hop").symlink_to("../outside/secret.txt")
    (folder / "sub").symlink_to("../outside", target_is_directory=True)
    (folder / "leak.txt").symlink_to(str(secret) if target == "ABSOLUTE" else target)
    library = loaded(folder)
    assert [str(error) for error in library.rejections] == [f"leak.txt:1: {OUTSIDE}"]
    assert titles(library) == {"Good story"}
    assert str(secret.resolve()) not in opened
    assert opened == [str((folder / "1_aaaaaaaa01.txt").resolve())]


@pytest.mark.parametrize("system_file", ["/etc/passwd", "/proc/self/environ"])
def test_links_to_system_files_are_rejected_unread(
        folder: Path, opened: list[str], system_file: str) -> None:
    if not Path(system_file).exists():
        pytest.skip(f"{system_file} does not exist on this system")
    (folder / "leak.txt").symlink_to(system_file)
    library = loaded(folder)
    assert [str(error) for error in library.rejections] == [f"leak.txt:1: {OUTSIDE}"]
    assert opened == [str((folder / "1_aaaaaaaa01.txt").resolve())]


def test_links_that_stay_inside_the_folder_count_as_stories(
        folder: Path, opened: list[str]) -> None:
    (folder / "archive").mkdir()
    write(folder / "archive", "old.txt", "Archived story")
    write(folder, ".draft.txt", "Draft story")  # hidden: not a story by itself
    os.mkfifo(folder / "pipe")
    (folder / "alias.txt").symlink_to("1_aaaaaaaa01.txt")
    (folder / "absolute.txt").symlink_to(folder / "archive" / "old.txt")
    (folder / "nested.txt").symlink_to("archive/old.txt")
    (folder / "draft.txt").symlink_to(".draft.txt")
    (folder / "a-folder.txt").symlink_to("archive", target_is_directory=True)
    (folder / "a-fifo.txt").symlink_to("pipe")  # opening it would wait for a writer
    library = loaded(folder)
    assert library.rejections == ()
    by_key = {story.key: story.title for story in library.stories}
    assert by_key == {"aaaaaaaa01": "Good story", "alias": "Good story",
                      "absolute": "Archived story", "nested": "Archived story",
                      "draft": "Draft story"}
    assert library.get("nested").source == "nested.txt"  # type: ignore[union-attr]
    assert str((folder / "pipe").resolve()) not in opened


def test_links_work_when_the_folder_is_itself_reached_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    write(real, "1_aaaaaaaa01.txt", "Good story")
    (real / "alias.txt").symlink_to(real / "1_aaaaaaaa01.txt")  # absolute, real path
    (real / "relative.txt").symlink_to("1_aaaaaaaa01.txt")
    (tmp_path / "via").symlink_to(real, target_is_directory=True)
    library = loaded(tmp_path / "via")
    assert library.rejections == ()
    assert [s.key for s in library.stories] == ["aaaaaaaa01", "alias", "relative"]


def test_loops_and_dangling_links_are_rejected_at_line_1(folder: Path) -> None:
    (folder / "self.txt").symlink_to("self.txt")
    (folder / "ping.txt").symlink_to("pong.txt")
    (folder / "pong.txt").symlink_to("ping.txt")
    (folder / "dangling.txt").symlink_to("missing.txt")
    (folder / "no-folder.txt").symlink_to("nowhere/missing.txt")
    (folder / "away.txt").symlink_to("../nowhere/missing.txt")  # dangling, but outside
    library = loaded(folder)
    assert [str(error) for error in library.rejections] == [
        f"away.txt:1: {OUTSIDE}",
        "dangling.txt:1: link target does not exist",
        "no-folder.txt:1: link target does not exist",
        "ping.txt:1: link loops back on itself",
        "pong.txt:1: link loops back on itself",
        "self.txt:1: link loops back on itself",
    ]
    assert titles(library) == {"Good story"}

    write(folder, "missing.txt", "Arrived late")  # the dangling link now has a target
    report = library.rescan()
    assert sorted(s.key for s in report.new) == ["dangling", "missing"]
    assert "dangling.txt" not in {error.path for error in library.rejections}


def test_a_retargeted_link_is_judged_again_on_each_rescan(
        folder: Path, opened: list[str]) -> None:
    first = write(folder, "a.txt", "First!")
    second = write(folder, "b.txt", "Second")  # same size, mode and time as a.txt
    same = first.stat().st_mtime_ns
    os.utime(second, ns=(same, same))
    assert first.stat().st_size == second.stat().st_size
    link = folder / "link.txt"
    link.symlink_to("a.txt")
    library = loaded(folder)
    assert library.get("link").title == "First!"  # type: ignore[union-attr]

    link.unlink()
    link.symlink_to("b.txt")  # the target's signature is the same: only the path differs
    assert [s.title for s in library.rescan().updated] == ["Second"]

    link.unlink()
    link.symlink_to("../outside/secret.txt")
    assert [str(e) for e in library.rescan().rejected] == [f"link.txt:1: {OUTSIDE}"]
    assert library.get("link").title == "Second"  # type: ignore[union-attr] # last good kept
    assert SECRET not in titles(library)

    link.unlink()
    link.symlink_to("a.txt")
    assert [s.title for s in library.rescan().updated] == ["First!"]
    assert library.rejections == ()
    assert str((folder.parent / "outside" / "secret.txt").resolve()) not in opened


def test_a_file_swapped_for_an_outside_link_after_the_listing_is_not_read(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(folder, "2_aaaaaaaa02.txt", "Soon swapped")
    original = os.open

    def racing_open(name: str, flags: int, *args: int) -> int:
        if name.endswith("2_aaaaaaaa02.txt") and not path.is_symlink():
            path.unlink()  # after the listing saw a plain file, before it is opened
            path.symlink_to("../outside/secret.txt")
        return original(name, flags, *args)

    monkeypatch.setattr(os, "open", racing_open)
    library = loaded(folder)
    assert titles(library) == {"Good story"}
    assert library.rejections == ()  # changed since the listing: judged by the next one
    assert [str(e) for e in library.rescan().rejected] == [f"2_aaaaaaaa02.txt:1: {OUTSIDE}"]
    assert titles(library) == {"Good story"}


def test_a_file_swapped_for_a_fifo_after_the_listing_does_not_hang_the_scan(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(folder, "2_aaaaaaaa02.txt", "Soon a pipe")
    original = os.open

    def racing_open(name: str, flags: int, *args: int) -> int:
        if name.endswith("2_aaaaaaaa02.txt") and path.is_file():
            path.unlink()  # a blocking open of a FIFO waits for a writer that never comes
            os.mkfifo(path)
        return original(name, flags, *args)

    monkeypatch.setattr(os, "open", racing_open)
    result: list[StoryLibrary] = []
    scan = threading.Thread(target=lambda: result.append(loaded(folder)), daemon=True)
    scan.start()
    scan.join(timeout=30)  # a deadline for a hang, not a wait for something to happen
    assert not scan.is_alive(), "the rescan is stuck opening a FIFO"
    [library] = result
    assert titles(library) == {"Good story"}
    assert library.rejections == ()  # not "empty file": it is no longer a story file
    library.rescan()  # the next listing sees the FIFO and leaves it alone
    assert titles(library) == {"Good story"}
    assert library.rejections == ()


def test_a_link_deleted_while_it_is_resolved_is_simply_gone(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    link = folder / "gone.txt"
    link.symlink_to("missing.txt")
    original = os.path.realpath

    def racing_realpath(path: str | os.PathLike[str], *, strict: bool = False) -> str:
        if os.fspath(path).endswith("gone.txt"):
            link.unlink()
        return original(path, strict=strict)

    monkeypatch.setattr(os.path, "realpath", racing_realpath)
    library = loaded(folder)
    assert library.rejections == ()
    assert titles(library) == {"Good story"}


def test_check_reports_an_outside_link_like_any_rejection(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "leak.txt").symlink_to("../outside/secret.txt")
    (folder / "dangling.txt").symlink_to("missing.txt")
    assert main(["check", str(folder)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "dangling.txt:1: link target does not exist",
        f"leak.txt:1: {OUTSIDE}",
        "1 stories loaded, 2 rejected",
    ]


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_export_never_shows_the_token_through_a_link_to_the_environment(folder: Path) -> None:
    token = "123456:link-leak-canary-token"
    # The child's environment, read as a file, is a valid story whose text holds the token:
    # the first entry supplies a timestamp, a title and a Story heading.
    frame = "Mar 30, 2025, 12:01 AM\n\nEnvironment\n\nStory\n\nStart"
    env = {frame: "", **os.environ, "TELEGRAM_BOT_TOKEN": token}
    (folder / "leak.txt").symlink_to("/proc/self/environ")
    done = subprocess.run([sys.executable, "run_bot.py", "export", str(folder)], cwd=ROOT,
                          check=False, capture_output=True, text=True, env=env)
    assert token not in done.stdout + done.stderr
    assert done.stderr.splitlines() == [f"leak.txt:1: {OUTSIDE}"]
    assert done.returncode == 1
