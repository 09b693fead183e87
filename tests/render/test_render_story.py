"""The full story, and how it is split into numbered parts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.render import Block, Span, pack_parts, render_story, story_blocks, visible_text
from bot.render.blocks import BOLD

from .helpers import assert_covers, assert_valid_part, make_story

BERLIN = ZoneInfo("Europe/Berlin")
SENTENCES = " ".join(f"Sentence number {n} says something & more." for n in range(1200))


def _reference(story_kwargs: Mapping[str, object]) -> str:
    blocks = story_blocks(make_story(**story_kwargs), BERLIN)
    return "\n\n".join(block.text for block in blocks if not block.is_empty())


def test_full_story_layout() -> None:
    (part,) = render_story(make_story(opinions=("One view.", "Another <view>.")), BERLIN)
    assert part == (
        "<b>Central bank holds rates</b>\n"
        "<i>Published 31 Mar 2025, 09:40 CEST\n"
        "Updated 31 Mar 2025, 11:15 CEST</i>\n\n"
        "• Rates stay at 4.25%.\n"
        "• Inflation fell to 2.8%.\n\n"
        "First paragraph.\n\n"
        "Second paragraph.\n\n"
        "<b>💬 Opinions</b>\n"
        "<blockquote expandable>One view.\n\nAnother &lt;view&gt;.</blockquote>"
    )
    assert_valid_part(part)


def test_published_only_when_never_updated_and_zone_per_date() -> None:
    winter = datetime(2025, 3, 29, 23, 0, tzinfo=UTC)
    (part,) = render_story(make_story(published=winter, updated=winter), BERLIN)
    assert "<i>Published 30 Mar 2025, 00:00 CET</i>" in part
    assert "Updated" not in part
    (part,) = render_story(
        make_story(published=winter, updated=datetime(2025, 3, 30, 9, 0, tzinfo=UTC)), BERLIN
    )
    assert "Published 30 Mar 2025, 00:00 CET\nUpdated 30 Mar 2025, 11:00 CEST" in part


@pytest.mark.parametrize(
    ("fields", "absent"),
    [
        ({"opinions": ()}, ["Opinions", "blockquote"]),
        ({"opinions": ("", "  ")}, ["Opinions", "blockquote"]),
        ({"highlights": ()}, ["•"]),
        ({"story": ()}, ["paragraph"]),
        ({"highlights": (), "story": (), "opinions": ()}, ["•", "Opinions", "\n\n"]),
    ],
)
def test_empty_sections_render_nothing(fields: dict[str, object], absent: list[str]) -> None:
    (part,) = render_story(make_story(**fields), BERLIN)
    assert_valid_part(part)
    for text in absent:
        assert text not in part
    assert "\n\n\n" not in part
    assert "<blockquote expandable></blockquote>" not in part


def test_title_is_escaped() -> None:
    (part,) = render_story(make_story(title="<b>&"), BERLIN)
    assert part.startswith("<b>&lt;b&gt;&amp;</b>\n")


def test_long_story_is_split_between_paragraphs_into_numbered_parts() -> None:
    fields = {"story": tuple(f"Paragraph {n}." + " word" * 60 for n in range(12))}
    parts = render_story(make_story(**fields), BERLIN, limit=1000)
    assert len(parts) > 2
    for index, part in enumerate(parts, start=1):
        assert_valid_part(part, limit=1000)
        assert part.endswith(f"\n\n<i>({index}/{len(parts)})</i>")
        body = visible_text(part).rsplit("\n\n", 1)[0]
        # every paragraph is whole: each part's paragraphs start and end where a paragraph does
        for chunk in body.split("\n\n"):
            if chunk.startswith("Paragraph"):
                assert chunk.endswith("word")
    assert_covers(parts, _reference(fields))


def test_fifty_thousand_character_paragraph_is_cut_at_sentence_ends() -> None:
    fields = {"story": (SENTENCES[:50_000],), "opinions": ()}
    parts = render_story(make_story(**fields), BERLIN)
    assert len(parts) >= 13
    for part in parts:
        assert_valid_part(part)
    for part in parts[1:-1]:
        assert re.search(r"&amp; more\.\n\n<i>\(\d+/\d+\)</i>$", part), part[-80:]
    assert_covers(parts, _reference(fields))


def test_long_opinions_continue_as_a_blockquote() -> None:
    fields = {"opinions": tuple(f"Opinion {n}: " + "so " * 150 for n in range(10))}
    parts = render_story(make_story(**fields), BERLIN, limit=700)
    quoted = [part for part in parts if "Opinion" in visible_text(part)]
    assert len(quoted) > 2
    for part in quoted:
        assert_valid_part(part, limit=700)
        assert part.count("<blockquote expandable>") == 1
    assert sum(part.count("💬 Opinions") for part in parts) == 1
    assert_covers(parts, _reference(fields))


def test_a_block_with_too_many_entities_is_split_by_entity_count() -> None:
    block = Block.of(*(Span(f"w{n} ", BOLD) for n in range(250)))
    parts = pack_parts([block], max_entities=100)
    assert len(parts) == 3
    for part in parts:
        assert_valid_part(part)
    assert "".join(visible_text(p) for p in parts).count("w") == 250


@pytest.mark.parametrize(("limit", "max_entities"), [(128, 4), (200, 5), (4096, 100)])
def test_small_limits_still_give_valid_parts(limit: int, max_entities: int) -> None:
    fields = {
        "title": "A title that is rather long for a small limit " * 3,
        "highlights": ("h " * 80,) * 3,
        "story": (SENTENCES[:3000],),
        "opinions": ("o " * 300,),
    }
    parts = render_story(make_story(**fields), BERLIN, limit=limit, max_entities=max_entities)
    for part in parts:
        assert_valid_part(part, limit=limit, max_entities=max_entities)
    assert_covers(parts, _reference(fields))


@pytest.mark.parametrize(("limit", "max_entities"), [(127, 100), (4096, 3)])
def test_too_small_limits_are_rejected(limit: int, max_entities: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        render_story(make_story(), BERLIN, limit=limit, max_entities=max_entities)
