"""Group commit: when the one transaction of a batch fails, every delivery waiting on it
hears so (and settles its row accordingly); none is left waiting forever or told "saved"."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from bot.delivery.group_commit import ProgressCommitter
from bot.storage.ledger import DeliveryLedger

NOW = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


class GatedLedger:
    """Records each progress commit and holds it until the test releases it; the commits
    numbered in ``failing`` then fail as a lost database connection would."""

    def __init__(self, commits: int, failing: set[int]) -> None:
        self.batches: list[list[int]] = []
        self.entered = [asyncio.Event() for _ in range(commits)]
        self.release = [asyncio.Event() for _ in range(commits)]
        self._failing = failing

    async def parts_sent(self, progress: Sequence[tuple[Any, ...]], now: datetime) -> None:
        index = len(self.batches)
        self.batches.append([item[0] for item in progress])  # the delivery ids
        self.entered[index].set()
        await self.release[index].wait()
        if index in self._failing:
            raise ConnectionError("connection to the database was lost")


async def test_a_failed_group_commit_reaches_every_waiter_of_its_batch() -> None:
    ledger = GatedLedger(3, failing={1})
    committer = ProgressCommitter(cast(DeliveryLedger, ledger))
    first = asyncio.ensure_future(committer.part_sent(1, "token-1", 1, True, NOW))
    await ledger.entered[0].wait()
    # Two deliveries finish while the first commit runs: they share the next one.
    joined = [asyncio.ensure_future(committer.part_sent(i, f"token-{i}", 1, True, NOW))
              for i in (2, 3)]
    await asyncio.sleep(0)  # let them queue behind the running commit
    ledger.release[0].set()
    await first
    await ledger.entered[1].wait()
    assert ledger.batches[1] == [2, 3]
    ledger.release[1].set()
    async with asyncio.timeout(5):  # a waiter nobody told would hang here
        outcomes = await asyncio.gather(*joined, return_exceptions=True)
    assert [type(o) for o in outcomes] == [ConnectionError, ConnectionError]
    assert committer.commits == 1  # the failed batch is not counted as committed

    ledger.release[2].set()  # and the committer carries on with the next delivery
    async with asyncio.timeout(5):
        await committer.part_sent(4, "token-4", 1, True, NOW)
    assert ledger.batches == [[1], [2, 3], [4]]
    assert committer.commits == 2
