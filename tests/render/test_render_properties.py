"""Hypothesis properties: for arbitrary stories every part is valid, within the limits,
cut only at grapheme boundaries, and together shows all the content exactly once."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.render import (
    render_card,
    render_digest,
    render_latest,
    render_story,
    story_blocks,
    visible_text,
)
from bot.stories.model import Story, StoryBody

from .helpers import TEXT, assert_covers, assert_valid_part, max_cluster_units, strip_footer

ZONES = st.sampled_from(
    [ZoneInfo(name) for name in ("UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu")]
)
LIMITS = st.sampled_from([(128, 4), (300, 6), (1000, 100), (4096, 100)])
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2040, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def stories(draw: st.DrawFn) -> Story:
    moments = sorted([draw(MOMENTS), draw(MOMENTS)])
    key = draw(st.from_regex(r"[0-9a-f]{8,32}", fullmatch=True))
    return Story(
        id=key,
        key=key,
        seq=None,
        title=draw(TEXT),
        published=moments[0],
        updated=moments[1],
        body=StoryBody(tuple(draw(st.lists(TEXT, max_size=30))),
                       tuple(draw(st.lists(TEXT, max_size=4))),
                       tuple(draw(st.lists(TEXT, max_size=6)))),
        source=f"{key}.txt",
    )


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _cluster_ok(story: Story, limit: int) -> bool:
    texts = (story.title, *story.highlights, *story.story, *story.opinions)
    return all(max_cluster_units(t[:200]) <= limit // 4 for t in texts)


def _stretch(text: str, size: int) -> str:
    """``text`` repeated to ``size`` characters: long paragraphs without a huge repr."""
    return (text * (size // max(len(text), 1) + 1))[:size] if text.strip() else text


@SETTINGS
@given(
    story=stories(),
    tz=ZONES,
    limits=LIMITS,
    stretch=st.sampled_from([0, 0, 5_000, 50_000]),
)
def test_story_parts_are_valid_and_complete(
    story: Story, tz: ZoneInfo, limits: tuple[int, int], stretch: int
) -> None:
    limit, max_entities = limits
    assume(_cluster_ok(story, limit))
    if stretch and story.story:
        # one paragraph of up to 50,000 characters (not with the smallest limits: too slow)
        size = stretch if limit >= 1000 else stretch // 10
        story = replace(story, body=StoryBody(
            story.highlights, (_stretch(story.story[0], size), *story.story[1:]),
            story.opinions))
    parts = render_story(story, tz, limit=limit, max_entities=max_entities)
    assert parts
    for part in parts:
        assert_valid_part(part, limit=limit, max_entities=max_entities)
    texts = [b.text for b in story_blocks(story, tz) if not b.is_empty()]
    starts = list(itertools.accumulate((len(t) + 2 for t in texts[:-1]), initial=0))
    assert_covers(parts, "\n\n".join(texts), starts)
    shown = _squeeze(
        "".join(strip_footer(visible_text(p), i, len(parts)) for i, p in enumerate(parts, 1))
    )
    for text in (story.title, *story.highlights, *story.story, *story.opinions):
        assert _squeeze(text) in shown


@settings(max_examples=60, deadline=None)
@given(story=stories(), tz=ZONES, number=st.none() | st.integers(1, 999), limits=LIMITS)
def test_card_is_one_valid_message(
    story: Story, tz: ZoneInfo, number: int | None, limits: tuple[int, int]
) -> None:
    limit, _ = limits
    card = render_card(story, tz, number=number, limit=limit)
    assert_valid_part(card, limit=limit)
    assert card.endswith(f"\nFull story: /story_{story.key}")
    assert card.count("<b>") == (1 if story.title.strip() or number else 0)
    assert card.count("<i>") == 1


@SETTINGS
@given(
    items=st.lists(stories(), max_size=12),
    tz=ZONES,
    limits=LIMITS,
    top_n=st.integers(1, 10),
    extra=st.integers(0, 5),
)
def test_lists_are_valid_and_keep_cards_whole(
    items: list[Story], tz: ZoneInfo, limits: tuple[int, int], top_n: int, extra: int
) -> None:
    limit, max_entities = limits
    latest = render_latest(items, tz, limit=limit, max_entities=max_entities)
    digest = render_digest(
        items,
        tz,
        local_date=date(2025, 3, 31),
        top_n=top_n,
        total=len(items) + extra,
        limit=limit,
        max_entities=max_entities,
    )
    for parts, cards in ((latest, len(items)), (digest, min(top_n, len(items)))):
        assert parts
        for part in parts:
            assert_valid_part(part, limit=limit, max_entities=max_entities)
            # a card is never split: each card's time (its one italic) comes with its link
            assert part.count("Full story: /story_") == (
                part.count("<i>Updated ") + part.count("<i>Published "))
        assert sum(part.count("\nFull story: /story_") for part in parts) == cards
    # only /latest numbers its cards: a number is a place in it
    assert ("<b>1." in "".join(latest)) == bool(items)  # "1.…" when the title is clipped
    if not any(story.title.strip().startswith("1") for story in items):
        assert "<b>1." not in "".join(digest)
    if items and (len(items) + extra) > top_n:
        assert f"and {len(items) + extra - min(top_n, len(items))} more — /latest" in digest[-1]
