"""The archive benchmark's synthetic stories: valid, of the promised size, reproducible,
and rewritten only when the archive on disk is not the one asked for."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from bot.stories.parser import parse_story

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^[0-9]{7}_[0-9a-f]{16}\.txt$")


@pytest.fixture(scope="module")
def corpus_module() -> ModuleType:
    """``benchmarks/archive_corpus.py`` (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(
        "archive_corpus", ROOT / "benchmarks" / "archive_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("archive_corpus", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(corpus_module: ModuleType) -> object:
    return corpus_module.Corpus(7, vocabulary=3000, pool=3000)


def _digest(folder: Path) -> str:
    files = sorted(p for p in folder.iterdir() if p.suffix == ".txt")
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()


def test_every_story_is_valid_and_one_to_four_kilobytes(
        corpus_module: ModuleType, corpus: object, tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    manifest = corpus_module.ensure_archive(folder, corpus, 300, workers=1)
    files = sorted(p for p in folder.iterdir() if p.suffix == ".txt")
    assert len(files) == 300 and manifest["reused"] is False
    for path in files:
        assert NAME.match(path.name)
        data = path.read_bytes()
        assert 1024 <= len(data) <= 4096, (path.name, len(data))
        story = parse_story(data, path.name, ZoneInfo("UTC"))
        assert story.title and story.highlights and story.story


def test_the_same_seed_writes_the_same_archive_whatever_the_number_of_writers(
        corpus_module: ModuleType, corpus: object, tmp_path: Path) -> None:
    one = corpus_module.ensure_archive(tmp_path / "one", corpus, 120, workers=1)
    two = corpus_module.ensure_archive(tmp_path / "two", corpus, 120, workers=2)
    assert one["bytes"] == two["bytes"]
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")


def test_an_archive_is_reused_only_when_it_is_the_one_asked_for(
        corpus_module: ModuleType, corpus: object, tmp_path: Path) -> None:
    folder = tmp_path / "stories"
    corpus_module.ensure_archive(folder, corpus, 50, workers=1)
    stray = folder / "stray.txt"
    stray.write_text("left from another archive")
    assert corpus_module.ensure_archive(folder, corpus, 50, workers=1)["reused"] is True
    assert stray.exists()
    manifest = corpus_module.ensure_archive(folder, corpus, 60, workers=1)
    assert manifest["reused"] is False and not stray.exists()
    assert len([p for p in folder.iterdir() if p.suffix == ".txt"]) == 60
    assert json.loads((folder / corpus_module.MANIFEST).read_text())["stories"] == 60
