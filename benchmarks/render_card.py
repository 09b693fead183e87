"""Rendering speed: prints one JSON object of named figures (microseconds / milliseconds).

Run from the repository root: python -m benchmarks.render_card
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.render import render_card, render_digest, render_story
from bot.stories.model import Story, StoryBody


def _story(paragraph: str) -> Story:
    moment = datetime(2025, 3, 31, 9, 15, tzinfo=UTC)
    return Story(
        id="001_5f0c2a9e41d7b3c8",
        key="5f0c2a9e41d7b3c8",
        seq=1,
        title="Central bank of Arlenia holds rates at 4.25% as inflation cools",
        published=moment,
        updated=moment,
        body=StoryBody(
            ("The central bank kept its benchmark rate at 4.25% for a third meeting.",) * 4,
            (paragraph,),
            ("An editorial praises the board's caution.",) * 2,
        ),
        source="001_5f0c2a9e41d7b3c8.txt",
    )


def _median_seconds(call: Callable[[], object], repeat: int, number: int) -> float:
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            call()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def main() -> None:
    tz = ZoneInfo("Europe/Berlin")
    short = _story("A paragraph of ordinary length. " * 20)
    huge = _story("Sentence number one says something & more. " * 1200)
    stories = [short] * 20
    figures = {
        "render_card_median_us": _median_seconds(lambda: render_card(short, tz), 15, 500) * 1e6,
        "render_story_median_us": _median_seconds(lambda: render_story(short, tz), 15, 200) * 1e6,
        "render_story_50k_median_ms": _median_seconds(lambda: render_story(huge, tz), 7, 5) * 1e3,
        "render_digest_8_of_20_median_us": _median_seconds(
            lambda: render_digest(stories, tz, local_date=date(2025, 3, 31)), 15, 100
        )
        * 1e6,
    }
    print(json.dumps({name: round(value, 2) for name, value in figures.items()}))


if __name__ == "__main__":
    main()
