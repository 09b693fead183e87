"""Latest order: the fast three-pass sort agrees with the documented sort key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.stories.model import Story, latest_order_key, sorted_latest

BERLIN = ZoneInfo("Europe/Berlin")
# Nights when the clocks go forward (a gap) and back (an overlap).
NIGHTS = (datetime(2025, 3, 30), datetime(2025, 10, 26))  # noqa: DTZ001 - wall clocks


def story(night: datetime, minutes: int, seq: int | None, key: str) -> Story:
    """A story updated at a wall time read the way the parser reads one."""
    wall = (night + timedelta(minutes=minutes)).replace(tzinfo=BERLIN)
    moment = wall.astimezone(UTC).astimezone(BERLIN)
    return Story(id=key, key=key, seq=seq, title=key, published=moment, updated=moment,
                 highlights=(), story=("Body.",), opinions=(), source=f"{key}.txt")


# Few distinct values on purpose: ties on `updated` and on `seq` are what the passes decide.
_STORIES = st.lists(
    st.builds(story, st.sampled_from(NIGHTS), st.integers(0, 8).map(lambda n: n * 25),
              st.none() | st.integers(0, 3), st.text("abc", min_size=1, max_size=3)),
    max_size=40,
    unique_by=lambda s: s.key,
)


@given(_STORIES)
def test_sorted_latest_is_the_latest_order_key_order(stories: list[Story]) -> None:
    assert sorted_latest(stories) == sorted(stories, key=latest_order_key)


def test_latest_order_is_newest_first_then_highest_seq_then_key() -> None:
    night = NIGHTS[0]
    stories = [story(night, 0, 5, "old"), story(night, 60, None, "b-none"),
               story(night, 60, 2, "c-two"), story(night, 60, 9, "d-nine"),
               story(night, 60, None, "a-none")]
    ordered = [s.key for s in sorted_latest(stories)]
    assert ordered == ["d-nine", "c-two", "a-none", "b-none", "old"]
