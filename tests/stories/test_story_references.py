"""Story references (``/story_<ref>``): short, unique, tappable, and read back without doubt."""

from __future__ import annotations

import random
import re
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.errors import StoryError
from bot.stories.library import MIN_REFERENCE, KeyReferences, StoryLibrary
from bot.stories.naming import is_story_file_name, key_from_name

UTC = ZoneInfo("UTC")
# What Telegram makes tappable: "/" and up to 64 letters, digits and "_".
TAPPABLE = re.compile(r"^/[A-Za-z0-9_]{1,64}$")
STORY = "Apr 2, 2025, 9:00 AM\n\n{title}\n\nHighlights\n• {title} bullet\n"


def write(folder: Path, name: str, title: str = "A story") -> Path:
    path = folder / name
    path.write_text(STORY.format(title=title))
    return path


def loaded(folder: Path) -> StoryLibrary:
    library = StoryLibrary(folder, UTC)
    library.rescan()
    return library


def resolve(references: KeyReferences, reference: str, keys: set[str]) -> list[str]:
    """What the library does with a reference: the key it spells out, else the prefix."""
    text = reference.replace("_", "-")
    return [text] if text in keys else references.matching(text)


def test_the_samples_get_eight_character_references_that_open_them(story_folder: Path) -> None:
    library = loaded(story_folder)
    press = library.get("press-release-harbour-authority")
    assert press is not None
    assert library.reference(press) == "press_re"
    assert library.by_reference("press_re") == (press,)
    for story in library.stories:
        reference = library.reference(story)
        assert len(reference) == MIN_REFERENCE
        assert library.by_reference(reference) == (story,)
        assert library.by_reference(reference.upper()) == (story,)  # typed in capitals


def test_typed_references_may_use_dashes_and_need_six_characters(story_folder: Path) -> None:
    library = loaded(story_folder)
    press = library.get("press-release-harbour-authority")
    for typed in ("press-release", "press_release", "PRESS-RE", "press-release-harbour-authority"):
        assert library.by_reference(typed) == (press,)
    assert library.by_reference("press") == ()  # five characters: too short to be a prefix
    assert library.by_reference("press release") == ()  # a space is in no key
    assert library.by_reference("") == ()


def test_a_reference_grows_when_a_story_sharing_its_prefix_arrives(story_folder: Path) -> None:
    library = loaded(story_folder)
    old = library.get("4e1d9a7c5b3f2086")
    assert old is not None and library.reference(old) == "4e1d9a7c"
    write(story_folder, "900_4e1d9a7c5b000000.txt", "Prefix twin")
    library.rescan()
    twin = library.get("4e1d9a7c5b000000")
    assert twin is not None
    assert library.reference(old) == "4e1d9a7c5b3"
    assert library.reference(twin) == "4e1d9a7c5b0"
    # an older message's reference now names both: the reader is offered a choice
    assert set(library.by_reference("4e1d9a7c")) == {old, twin}
    (story_folder / "900_4e1d9a7c5b000000.txt").unlink()
    library.rescan()
    assert library.reference(old) == "4e1d9a7c"
    assert library.by_reference("4e1d9a7c5b0") == ()  # gone: nothing, not another story


def test_a_key_that_begins_another_is_named_whole(tmp_path: Path) -> None:
    write(tmp_path, "Harbour report.txt")
    write(tmp_path, "Harbour report update.txt")
    write(tmp_path, "Harbour.txt")
    library = loaded(tmp_path)
    short, long_, shortest = (library.get(k) for k in (
        "harbour-report", "harbour-report-update", "harbour"))
    assert short is not None and long_ is not None and shortest is not None
    assert library.reference(shortest) == "harbour"  # shorter than 8: all of it
    assert library.reference(short) == "harbour_report"
    # "harbour-report-" would be unique but ends in a dash: one more character
    assert library.reference(long_) == "harbour_report_u"
    for story in (short, long_, shortest):
        assert library.by_reference(library.reference(story)) == (story,)


def test_find_reads_numbers_as_places_and_keys_before_words(story_folder: Path) -> None:
    library = loaded(story_folder)
    press = library.get("press-release-harbour-authority")
    for number in ("0", "-1", "+0", "16", "99999", "2025", "123456789"):
        lookup = library.find(number)
        assert (lookup.kind, lookup.matches) == ("position", ()), number
    assert library.find("-3").matches == ()
    assert library.find("1").story == library.stories[0]
    assert library.find("press-release").story == press
    assert library.find("press_re").story == press
    assert library.find("harbour").kind == "search"


@st.composite
def file_names(draw: st.DrawFn) -> str:
    """Any name the folder may hold: the usual ``NNN_<hex>.txt`` or anything else."""
    if draw(st.booleans()):
        digits = draw(st.integers(0, 99999))
        return f"{digits:03d}_{draw(st.from_regex(r'[0-9a-f]{8,32}', fullmatch=True))}.txt"
    stem = draw(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="/\0"),
                        min_size=1, max_size=60)
                | st.from_regex(r"[a-z0-9_ -]{1,50}", fullmatch=True))
    return f"{stem}.txt"


def _keys(names: list[str]) -> set[str]:
    keys = set()
    for name in names:
        if not is_story_file_name(name):
            continue
        try:
            keys.add(key_from_name(name)[1])
        except StoryError:
            continue
    return keys


@settings(max_examples=300, deadline=None)
@given(st.lists(file_names(), min_size=1, max_size=40))
def test_every_key_the_library_can_produce_round_trips(names: list[str]) -> None:
    keys = _keys(names)
    assume(keys)
    references = KeyReferences(keys)
    seen: set[str] = set()
    for key in keys:
        reference = references.reference(key)
        command = f"/story_{reference}"
        assert TAPPABLE.match(command), command  # tappable, at most 64 characters
        assert "-" not in reference and reference.replace("_", "-") == key[:len(reference)]
        assert len(reference) >= min(MIN_REFERENCE, len(key))
        assert reference not in seen  # no two stories share a reference
        seen.add(reference)
        assert resolve(references, reference, keys) == [key]  # and it reads back as its key
        shorter = reference[:-1]
        if len(shorter) >= MIN_REFERENCE and not shorter.endswith("_"):
            # the shortest that is unique (references never end in a dash)
            assert resolve(references, shorter, keys) != [key]


@settings(max_examples=60, deadline=None)
@given(st.lists(file_names(), min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_incremental_references_match_a_fresh_index(names: list[str],
                                                    rng: random.Random) -> None:
    keys = sorted(_keys(names))
    assume(len(keys) > 1)
    before = set(rng.sample(keys, rng.randint(1, len(keys))))
    after = set(rng.sample(keys, rng.randint(1, len(keys))))
    changed = KeyReferences(before).changed(added=after - before, removed=before - after)
    fresh = KeyReferences(after)
    assert [changed.reference(k) for k in sorted(after)] == [
        fresh.reference(k) for k in sorted(after)]
    assert len(changed) == len(after)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(file_names(), min_size=1, max_size=12, unique=True))
def test_a_loaded_folder_opens_every_story_by_its_reference(names: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        written = []
        for name in names:
            try:
                write(Path(folder), name)
            except OSError:  # a name this file system refuses (too long, …)
                continue
            written.append(name)
        library = loaded(Path(folder))
        assert len(library.stories) == len(_keys(written))
        for story in library.stories:
            reference = library.reference(story)
            assert TAPPABLE.match(f"/story_{reference}")
            assert library.by_reference(reference) == (story,)
            assert library.find(reference).story == story or reference.isdecimal()


def test_references_stay_cheap_for_a_large_archive() -> None:
    rng = random.Random(7)
    keys = {f"{rng.getrandbits(64):016x}" for _ in range(200_000)}
    references = KeyReferences(keys)
    sample = rng.sample(sorted(keys), 2000)
    began = time.perf_counter()
    for key in sample:
        references.matching(references.reference(key).replace("_", "-"))
    # two bisections each: a few milliseconds; a scan of every key would take minutes
    assert time.perf_counter() - began < 1.0
    began = time.perf_counter()
    references.changed(added=["0" * 16], removed=sample[:10])
    assert time.perf_counter() - began < 1.0


def test_only_story_keys_get_a_reference() -> None:
    with pytest.raises(ValueError, match="not a story key"):
        KeyReferences(["a_b"]).reference("a_b")
