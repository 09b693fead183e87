"""The per-user throttle keeps its memory bounded without changing any verdict."""

from __future__ import annotations

import tracemalloc

from bot.telegram.throttle import ThrottleVerdict, UserThrottle

ALLOW, NOTIFY, IGNORE = ThrottleVerdict.ALLOW, ThrottleVerdict.NOTIFY, ThrottleVerdict.IGNORE


class Clock:
    """A clock the test moves by hand (steps of 0.5 s stay exact in binary)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_off_users_are_forgotten_once_their_window_passes() -> None:
    clock = Clock()
    throttle = UserThrottle(3, 60, clock=clock)
    regular = 0  # a reader who keeps coming back every 10 s, throttled half the time
    largest = 0
    for user in range(1, 100_001):
        clock.now = user * 0.5  # a new user every half second: 120 in any one window
        assert throttle.check(user) is ALLOW
        if user % 20 == 0:
            throttle.check(regular)
        largest = max(largest, throttle.tracked_users)
    # the one-off users of the last minute (119 before this one, and this one), the regular
    assert throttle.tracked_users == 120 + 1
    assert largest == 121
    clock.now += 59.5
    throttle.check(regular)
    assert throttle.tracked_users == 1 + 1  # the regular, and the last one-off (59.5 s ago)


def test_memory_stays_flat_while_new_users_keep_arriving() -> None:
    clock = Clock()
    throttle = UserThrottle(1, 60, clock=clock)

    def arrivals(first: int, count: int) -> None:
        for user in range(first, first + count):
            clock.now = user * 0.5
            assert [throttle.check(user), throttle.check(user)] == [ALLOW, NOTIFY]

    tracemalloc.start()
    try:
        arrivals(1_000_000, 20_000)
        before = tracemalloc.get_traced_memory()[0]
        arrivals(1_020_000, 50_000)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024, f"grew by {after - before} bytes for 50,000 users gone"


def test_a_throttled_user_stays_throttled_until_the_window_passes() -> None:
    clock = Clock()
    throttle = UserThrottle(3, 60, clock=clock)
    assert [throttle.check(7) for _ in range(3)] == [ALLOW, ALLOW, ALLOW]
    other = 1000
    for moment, expected in ((1.0, NOTIFY), (30.0, IGNORE), (59.5, IGNORE)):
        while clock.now < moment:  # others keep the throttle pruning all the while
            clock.now += 0.5
            other += 1
            throttle.check(other)
            throttle.forget_idle()
        assert throttle.check(7) is expected, moment
    clock.now = 60.0
    assert throttle.check(7) is ALLOW


def test_forgetting_never_drops_a_user_whose_later_requests_still_count() -> None:
    clock = Clock()
    throttle = UserThrottle(3, 60, clock=clock)
    for moment in (0.0, 50.0, 55.0):
        clock.now = moment
        assert throttle.check(7) is ALLOW
    clock.now = 61.0  # the first request has left the window; the other two have not
    throttle.forget_idle()
    assert [throttle.check(7) for _ in range(3)] == [ALLOW, NOTIFY, IGNORE]
    clock.now = 109.5
    assert throttle.check(7) is IGNORE
    clock.now = 110.0  # the request made at 50 leaves the window: one slot frees
    assert [throttle.check(7), throttle.check(7)] == [ALLOW, NOTIFY]


def test_retry_after_is_when_the_oldest_counted_request_leaves_the_window() -> None:
    clock = Clock()
    throttle = UserThrottle(3, 60, clock=clock)
    for moment in (0.0, 10.0, 20.5):
        clock.now = moment
        assert throttle.retry_after(7) == 0  # still within the limit: no wait
        assert throttle.check(7) is ALLOW
    clock.now = 21.0
    assert throttle.check(7) is NOTIFY
    assert throttle.retry_after(7) == 39  # the request made at 0 leaves at 60
    clock.now = 59.5
    assert throttle.retry_after(7) == 1  # rounded up: never told to come back too early
    assert throttle.check(7) is IGNORE
    clock.now = 60.0
    assert throttle.retry_after(7) == 0
    assert throttle.check(7) is ALLOW
    assert throttle.retry_after(8) == 0  # a user never seen


def test_button_presses_have_a_budget_of_their_own() -> None:
    clock = Clock()
    messages = UserThrottle(2, 60, clock=clock)
    presses = messages.budget("presses", 5)
    assert messages.budget("presses", 5) is presses  # one budget, kept between checks
    assert [presses.check(7) for _ in range(6)] == [ALLOW] * 5 + [NOTIFY]
    assert [messages.check(7) for _ in range(3)] == [ALLOW, ALLOW, NOTIFY]  # untouched
    assert presses.check(7) is IGNORE  # and messages used none of the presses
    clock.now = 61.0
    messages.forget_idle()  # forgetting reaches the press budget too
    assert (messages.tracked_users, presses.tracked_users) == (0, 0)
