"""The story model: latest order (the fast sort agrees with the documented key) and bodies
whose text is normalised on first use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.stories.model import Story, StoryBody, latest_order_key, sorted_latest

BERLIN = ZoneInfo("Europe/Berlin")
# Nights when the clocks go forward (a gap) and back (an overlap).
NIGHTS = (datetime(2025, 3, 30), datetime(2025, 10, 26))  # noqa: DTZ001 - wall clocks


def story(night: datetime, minutes: int, seq: int | None, key: str) -> Story:
    """A story updated at a wall time read the way the parser reads one."""
    wall = (night + timedelta(minutes=minutes)).replace(tzinfo=BERLIN)
    moment = wall.astimezone(UTC).astimezone(BERLIN)
    return Story(id=key, key=key, seq=seq, title=key, published=moment, updated=moment,
                 body=StoryBody((), ("Body.",)), source=f"{key}.txt")


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


def test_a_deferred_body_is_built_once_on_first_use_and_equals_an_eager_one() -> None:
    builds: list[int] = []

    def build() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        builds.append(1)
        return ("A highlight.",), ("A paragraph.",), ()

    lazy = StoryBody.deferred(build)
    assert builds == []  # loading a story does not normalise its text
    eager = StoryBody(("A highlight.",), ("A paragraph.",))
    assert lazy == eager and hash(lazy) == hash(eager)
    assert (lazy.highlights, lazy.paragraphs, lazy.opinions) == (
        ("A highlight.",), ("A paragraph.",), ())
    assert builds == [1]
    assert repr(lazy) == repr(eager)
    assert lazy != StoryBody(("Another highlight.",), ("A paragraph.",))
