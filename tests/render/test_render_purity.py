"""The renderer stays pure and cheap: no telegram, no I/O, no mutable globals, fast cards."""

from __future__ import annotations

import ast
import importlib
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import bot.render
from bot.render import render_card

from .helpers import make_story

RENDER_DIR = Path(bot.render.__file__).parent
MODULES = sorted(RENDER_DIR.glob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_render_imports_only_the_standard_library_and_the_story_model() -> None:
    """The story model, and the search words (which words a result marks is the search's
    own definition: pure text handling)."""
    for path in MODULES:
        for name in _imports(path):
            top = name.split(".")[0]
            assert (
                top in sys.stdlib_module_names
                or name.startswith("bot.render")
                or name in ("bot.stories.model", "bot.stories.search")
            ), f"{path.name} imports {name}"
            assert top not in ("telegram", "socket", "asyncio", "sqlalchemy")


def test_no_module_level_mutable_state() -> None:
    for path in MODULES:
        module: ModuleType = importlib.import_module(
            f"bot.render.{path.stem}".removesuffix(".__init__")
        )
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            assert not isinstance(value, list | dict | set | bytearray), f"{path.name}: {name}"


def test_public_api_is_exported() -> None:
    for name in (
        "render_card",
        "render_latest",
        "render_story",
        "render_digest",
        "render_no_news",
        "visible_length",
        "count_entities",
        "message_problems",
        "pack_parts",
        "card_block",
        "story_blocks",
    ):
        assert name in bot.render.__all__
        assert callable(getattr(bot.render, name))


def test_rendering_a_card_is_fast() -> None:
    story = make_story(highlights=("A highlight of ordinary length, about a line. " * 2,) * 4)
    tz = ZoneInfo("Europe/Berlin")
    render_card(story, tz, number=1)
    batches = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(200):
            render_card(story, tz, number=1)
        batches.append((time.perf_counter() - start) / 200)
    # target is < 100 µs; the assertion leaves room for a loaded CI machine
    assert statistics.median(batches) < 300e-6
