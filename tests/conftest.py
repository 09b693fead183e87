"""Shared fixtures: the project's own copies of the sample story folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# python-telegram-bot 22 warns when it builds RetryAfter unless this opts in to the future
# behaviour; pytest turns warnings into errors, so every test opts in.
os.environ.setdefault("PTB_TIMEDELTA", "true")

FIXTURES = Path(__file__).parent / "fixtures"
STORIES = FIXTURES / "stories"
INVALID_STORIES = FIXTURES / "stories-invalid"


@pytest.fixture
def story_folder(tmp_path: Path) -> Path:
    """A writable copy of the sample stories (without the expected results file)."""
    folder = tmp_path / "stories"
    folder.mkdir()
    for source in STORIES.glob("*.txt"):
        shutil.copy(source, folder / source.name)
    return folder
