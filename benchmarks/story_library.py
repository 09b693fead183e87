"""Story library benchmark: cold load, rescans and rendering against bare file-system work.

Prints one JSON object. Every figure is the median of several runs. Each library figure is
also given as a ratio to the bare operation it is bounded by: the two are run in turns, and
the ratio is the median of the per-turn ratios, so a slow spell of the machine slows both
sides of a ratio instead of one.

    python benchmarks/story_library.py [--stories 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.render import render_card, render_story
from bot.stories.library import StoryLibrary
from bot.stories.parser import parse_story

WORDS = [
    "harbour",
    "ferry",
    "council",
    "budget",
    "strike",
    "river",
    "school",
    "rail",
    "bank",
    "inflation",
    "storm",
    "election",
    "museum",
    "festival",
    "bridge",
    "hospital",
    "market",
    "energy",
    "water",
    "trial",
]


def synthetic_story(rng: random.Random, moment: datetime) -> str:
    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."

    stamp = moment.strftime("%b %-d, %Y, %-I:%M %p")
    highlights = "\n".join(f"  • {sentence(14)}" for _ in range(3))
    paragraphs = "\n\n".join(" ".join(sentence(18) for _ in range(4)) for _ in range(3))
    return (
        f"{stamp}\n{stamp}\n\n{sentence(9)}\n\nHighlights\n{highlights}\nStory\n\n"
        f"{paragraphs}\n\nOpinions\n\n{sentence(20)}\n\nYou've reached the end\n"
    )


def median_seconds(action: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def seconds(action: Callable[[], object]) -> float:
    """How long ``action`` takes; freeing what it returns happens after the clock stops."""
    start = time.perf_counter()
    result = action()
    took = time.perf_counter() - start
    del result
    return took


def in_turns(baseline: Callable[[], object], action: Callable[[], object],
             runs: int) -> tuple[float, float, float]:
    """Median baseline and action times, and the median ratio of runs taken in turns."""
    pairs = [(seconds(baseline), seconds(action)) for _ in range(runs)]
    return (statistics.median(b for b, _ in pairs), statistics.median(a for _, a in pairs),
            statistics.median(a / b for b, a in pairs))


def bare_read(folder: Path) -> None:
    """The plainest way to read every file: list, open, read, close."""
    for entry in os.scandir(folder):
        with open(entry.path, "rb") as handle:  # noqa: PTH123 - the plain baseline
            handle.read()


def load(folder: Path, tz: ZoneInfo) -> StoryLibrary:
    """A cold load; the library is returned so that freeing it is not timed."""
    library = StoryLibrary(folder, tz)
    library.rescan()
    return library


def bare_list_and_stat(folder: Path) -> None:
    for entry in os.scandir(folder):
        entry.stat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(20250331)
    tz = ZoneInfo("UTC")
    start = datetime(2025, 1, 1, tzinfo=UTC)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for number in range(args.stories):
            moment = start + timedelta(minutes=7 * number)
            key = f"{rng.getrandbits(64):016x}"
            (folder / f"{number:05d}_{key}.txt").write_text(synthetic_story(rng, moment))

        read, cold, cold_ratio = in_turns(lambda: bare_read(folder),
                                          lambda: load(folder, tz), args.runs)

        library = StoryLibrary(folder, tz)
        library.rescan()
        listing, unchanged, unchanged_ratio = in_turns(lambda: bare_list_and_stat(folder),
                                                       library.rescan, args.runs)

        extra = synthetic_story(rng, start + timedelta(days=400))
        one_parse = median_seconds(lambda: parse_story(extra.encode(), "x.txt", tz), args.runs * 20)
        samples = []  # (bare listing, rescan after one new file), in turns
        for run in range(args.runs):
            bare = seconds(lambda: bare_list_and_stat(folder))
            (folder / f"9{run:04d}_{rng.getrandbits(64):016x}.txt").write_text(extra)
            began = time.perf_counter()
            report = library.rescan()
            samples.append((bare, time.perf_counter() - began))
            assert len(report.new) == 1
        one_new = statistics.median(took for _, took in samples)
        one_new_ratio = statistics.median(took / (bare + one_parse) for bare, took in samples)

        story = library.stories[0]
        card = median_seconds(lambda: render_card(story, tz), 2000)
        full = median_seconds(lambda: render_story(story, tz), 500)

    print(
        json.dumps(
            {
                "stories": args.stories,
                "runs": args.runs,
                "bare_read_s": round(read, 4),
                "bare_list_stat_s": round(listing, 4),
                "cold_load_s": round(cold, 4),
                "cold_load_vs_bare_read": round(cold_ratio, 2),
                "rescan_unchanged_s": round(unchanged, 4),
                "rescan_unchanged_vs_list_stat": round(unchanged_ratio, 2),
                "one_parse_s": round(one_parse, 6),
                "rescan_one_new_s": round(one_new, 4),
                "rescan_one_new_vs_list_stat_plus_parse": round(one_new_ratio, 2),
                "card_render_median_us": round(card * 1e6, 1),
                "story_render_median_us": round(full * 1e6, 1),
                "targets": {
                    "cold_load_vs_bare_read": 3.0,
                    "rescan_unchanged_vs_list_stat": 2.0,
                    "rescan_one_new_vs_list_stat_plus_parse": 2.0,
                    "card_render_median_us": 100.0,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
