"""Dependencies point one way: the pure core never imports Telegram or the shell."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"
# package -> imports it must never make
FORBIDDEN = {
    "stories": ("telegram", "bot.render", "bot.storage", "bot.delivery", "bot.telegram",
                "bot.sandbox", "sqlalchemy"),
    "render": ("telegram", "bot.storage", "bot.delivery", "bot.telegram", "bot.sandbox"),
    "storage": ("telegram", "bot.delivery", "bot.telegram", "bot.sandbox"),
    "delivery": ("bot.telegram", "bot.sandbox"),
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_core_packages_do_not_import_outer_layers(package: str) -> None:
    files = sorted((BOT / package).glob("*.py"))
    assert files
    offenders = {
        f"{path.name}: {name}"
        for path in files for name in imports_of(path)
        for banned in FORBIDDEN[package]
        if name == banned or name.startswith(f"{banned}.")
    }
    assert offenders == set()
