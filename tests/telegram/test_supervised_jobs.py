"""A periodic job that fails is reported, retried by its next run, and ends the process
only when it keeps failing past ``give_up_seconds`` (or the database retry gave up)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Settings
from bot.status import ProcessStatus
from bot.storage.retry import DatabaseUnavailable
from bot.telegram.jobs import supervised


@dataclass
class FakeServices:
    settings: Settings = field(default_factory=Settings)
    status: ProcessStatus = field(default_factory=ProcessStatus)


@dataclass
class FakeContext:
    services: FakeServices = field(default_factory=FakeServices)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_failing_job_is_reported_retried_and_cleared_when_it_works_again() -> None:
    context, clock = FakeContext(), Clock()
    status = context.services.status
    failing = True
    runs = 0

    async def scan(_context: object) -> None:
        nonlocal runs
        runs += 1
        if failing:
            raise RuntimeError("disk I/O error")

    job = supervised("due scan", scan, clock=clock)
    await job(context)  # type: ignore[arg-type]
    assert status.problems == {"due scan": "due scan failing: disk I/O error"}
    clock.now = 100.0
    await job(context)  # type: ignore[arg-type]  # still within give_up_seconds (300)
    assert status.fatal is None and "due scan" in status.problems
    failing = False
    await job(context)  # type: ignore[arg-type]
    assert runs == 3 and status.problems == {} and status.fatal is None


async def test_a_job_failing_past_give_up_seconds_fails_the_process() -> None:
    context, clock = FakeContext(), Clock()
    status = context.services.status
    stopped: list[str] = []
    status.on_fatal(stopped.append)

    async def progress(_context: object) -> None:
        raise RuntimeError("boom")

    job = supervised("broadcast progress", progress, clock=clock)
    await job(context)  # type: ignore[arg-type]
    clock.now = 301.0
    await job(context)  # type: ignore[arg-type]
    assert stopped == ["broadcast progress has failed for 301s: boom"]


async def test_a_database_outage_the_retry_gave_up_on_fails_the_process_at_once() -> None:
    context = FakeContext()

    async def scan(_context: object) -> None:
        raise DatabaseUnavailable("the database has not answered for 301s")

    await supervised("due scan", scan)(context)  # type: ignore[arg-type]
    assert context.services.status.fatal == "due scan: the database has not answered for 301s"
