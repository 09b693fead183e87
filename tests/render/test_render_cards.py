"""Highlight cards and the latest list, as a reader sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.render import StoryLinks, render_card, render_latest, visible_text
from bot.render.cards import card_block
from bot.stories.model import Story

from .helpers import T0, assert_valid_part, make_story

BERLIN = ZoneInfo("Europe/Berlin")


def short(story: Story) -> str:
    """A stand-in for the library's reference: the first 8 characters."""
    return story.key[:8].replace("-", "_")


def test_card_shows_title_time_highlights_and_how_to_open() -> None:
    card = render_card(make_story(), BERLIN)
    assert card == (
        "<b>Central bank holds rates</b>\n"
        "<i>Updated 31 Mar 2025, 11:15 CEST</i>\n"
        "• Rates stay at 4.25%.\n"
        "• Inflation fell to 2.8%.\n"
        "Full story: /story_5f0c2a9e41d7b3c8"
    )
    assert_valid_part(card)


@pytest.mark.parametrize(
    ("updated", "zone", "shown"),
    [
        (datetime(2025, 3, 31, 9, 15, tzinfo=UTC), "Europe/Berlin", "31 Mar 2025, 11:15 CEST"),
        (datetime(2025, 3, 29, 9, 15, tzinfo=UTC), "Europe/Berlin", "29 Mar 2025, 10:15 CET"),
        # the spring-forward night: 01:30 CET, then an hour later 03:30 CEST
        (datetime(2025, 3, 30, 0, 30, tzinfo=UTC), "Europe/Berlin", "30 Mar 2025, 01:30 CET"),
        (datetime(2025, 3, 30, 1, 30, tzinfo=UTC), "Europe/Berlin", "30 Mar 2025, 03:30 CEST"),
        # the fall-back night: the same wall time twice, told apart by the zone name
        (datetime(2025, 11, 2, 5, 30, tzinfo=UTC), "America/New_York", "2 Nov 2025, 01:30 EDT"),
        (datetime(2025, 11, 2, 6, 30, tzinfo=UTC), "America/New_York", "2 Nov 2025, 01:30 EST"),
        # the reader's date, not the story's
        (datetime(2025, 3, 31, 23, 30, tzinfo=UTC), "Asia/Tokyo", "1 Apr 2025, 08:30 JST"),
        (datetime(2025, 1, 1, 0, 5, tzinfo=UTC), "America/Los_Angeles", "31 Dec 2024, 16:05 PST"),
        (datetime(2025, 3, 31, 9, 15, tzinfo=UTC), "UTC", "31 Mar 2025, 09:15 UTC"),
        (datetime(2025, 3, 31, 9, 15, tzinfo=UTC), "Asia/Kolkata", "31 Mar 2025, 14:45 IST"),
        # zones without an abbreviation get a readable offset
        (T0, "America/Sao_Paulo", "31 Mar 2025, 06:15 UTC-03:00"),
        (T0, "Asia/Kathmandu", "31 Mar 2025, 15:00 UTC+05:45"),
    ],
)
def test_card_time_is_in_the_reader_zone(updated: datetime, zone: str, shown: str) -> None:
    card = render_card(make_story(updated=updated), ZoneInfo(zone))
    assert f"<i>Updated {shown}</i>" in card


@pytest.mark.parametrize(
    ("title", "html"),
    [
        ("<b>&", "&lt;b&gt;&amp;"),
        ("AT&T “deal” isn't <final>", "AT&amp;T “deal” isn't &lt;final&gt;"),
        ("&lt; stays literal", "&amp;lt; stays literal"),
    ],
)
def test_title_text_is_shown_literally(title: str, html: str) -> None:
    card = render_card(make_story(title=title, highlights=("a <i> & b",)), BERLIN)
    assert card.startswith(f"<b>{html}</b>\n")
    assert "• a &lt;i&gt; &amp; b\n" in card
    assert visible_text(card).startswith(title)
    assert_valid_part(card)


@pytest.mark.parametrize(
    ("key", "links", "command"),
    [
        ("99093b385269948a", StoryLinks(), "/story_99093b385269948a"),
        ("99093b385269948a", StoryLinks(short), "/story_99093b38"),
        ("abc123", StoryLinks(), "/story_abc123"),
        ("press-release-harbour-authority", StoryLinks(),
         "/story_press_release_harbour_authority"),
        ("press-release-harbour-authority", StoryLinks(short), "/story_press_re"),
        ("press-release-harbour-authority", StoryLinks.for_chat("supergroup", "story_bot", short),
         "/story_press_re@story_bot"),
        ("press-release-harbour-authority", StoryLinks.for_chat("group", "story_bot", short),
         "/story_press_re@story_bot"),
        ("press-release-harbour-authority", StoryLinks.for_chat("private", "story_bot", short),
         "/story_press_re"),
    ],
)
def test_card_names_its_story_by_a_tappable_command(key: str, links: StoryLinks,
                                                    command: str) -> None:
    card = render_card(make_story(key=key), BERLIN, links=links)
    assert card.endswith(f"\nFull story: {command}")
    assert_valid_part(card)


def test_a_channel_card_links_into_a_private_chat_by_the_whole_key() -> None:
    story = make_story(key="press-release-harbour-authority")
    card = render_card(story, BERLIN, links=StoryLinks.for_chat("channel", "story_bot", short))
    assert card.endswith(
        '\nFull story: <a href="https://t.me/story_bot?start=story_press-release-harbour-'
        'authority">open in @story_bot</a>')
    assert "/story" not in visible_text(card)  # nobody can send a command in a channel
    assert_valid_part(card)
    # without the bot's username no link can be built: a command still names the story
    assert render_card(story, BERLIN, links=StoryLinks.for_chat("channel", "", short)).endswith(
        "\nFull story: /story_press_re")


def test_numbered_card_and_no_highlights() -> None:
    card = render_card(make_story(highlights=()), BERLIN, number=3)
    assert card.startswith("<b>3. Central bank holds rates</b>\n")
    assert "•" not in card
    assert card.count("\n") == 2


def test_oversized_card_is_shortened_but_keeps_the_link() -> None:
    story = make_story(title="T " * 3000, highlights=tuple("word " * 40 for _ in range(200)))
    card = render_card(story, BERLIN)
    assert_valid_part(card)
    assert card.endswith("\nFull story: /story_5f0c2a9e41d7b3c8")
    assert "…" in card
    small = render_card(story, BERLIN, limit=200)
    assert_valid_part(small, limit=200)
    linked = render_card(story, BERLIN, limit=200, links=StoryLinks.deep_links("story_bot"))
    assert_valid_part(linked, limit=200)
    assert linked.endswith("open in @story_bot</a>")


def test_card_block_respects_its_budget() -> None:
    story = make_story(highlights=("x" * 500,) * 3)
    block = card_block(story, BERLIN, number=1, max_units=300)
    assert block.units <= 300
    assert block.entities == 2


def test_latest_lists_numbered_cards_under_a_header() -> None:
    stories = [make_story(key=f"{n:08x}cafe0000", title=f"Story {n}") for n in range(3)]
    (part,) = render_latest(stories, BERLIN, links=StoryLinks(short))
    assert part.startswith("<b>📰 Latest stories</b>\n\n<b>1. Story 0</b>\n")
    assert "\n\n<b>2. Story 1</b>\n" in part
    assert part.endswith("Full story: /story_00000002")
    assert_valid_part(part)
    (alert,) = render_latest(stories[:1], BERLIN, header="🆕 New story", numbered=False)
    assert alert.startswith("<b>🆕 New story</b>\n\n<b>Story 0</b>\n")


def test_latest_without_stories_still_says_something() -> None:
    assert render_latest([], BERLIN) == ["<b>📰 Latest stories</b>\n\nNo stories yet."]


def test_long_latest_list_is_split_between_cards_into_numbered_parts() -> None:
    stories = [
        make_story(key=f"{n:08x}cafe0000", title=f"Story {n}", highlights=("h " * 200,) * 3)
        for n in range(30)
    ]
    parts = render_latest(stories, BERLIN)
    assert len(parts) > 1
    for index, part in enumerate(parts, start=1):
        assert_valid_part(part)
        assert part.endswith(f"\n\n<i>({index}/{len(parts)})</i>")
        # every card is whole: as many titles as links in each part
        assert part.count("Full story: /story_") == part.count("<b>") - (index == 1)
    joined = "".join(parts)
    for n in range(30):
        assert joined.count(f"<b>{n + 1}. Story {n}</b>") == 1


@pytest.mark.parametrize("max_entities", [4, 5, 7, 100])
def test_latest_respects_the_entity_limit(max_entities: int) -> None:
    stories = [make_story(key=f"{n:08x}cafe0000", title=f"S{n}") for n in range(60)]
    parts = render_latest(stories, BERLIN, max_entities=max_entities)
    for part in parts:
        assert_valid_part(part, max_entities=max_entities)
    assert "".join(parts).count("Full story:") == 60
