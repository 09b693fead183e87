"""The sender: drains the ledger through the rate limiter, one committed step at a time.

A worker claims ready rows (``pending -> sending``, stamped with its id), sends each part
with ``rate_limit_args={"lane": "bulk"}`` so the shared :class:`LaneRateLimiter` keeps
readers' replies ahead of the fan-out, and commits after every part. What happens on an
error is decided by :func:`bot.delivery.outcome.classify`:

* 429 — the limiter already paused all bulk sending and resent; if it gave up, the row
  goes back to ``pending`` after ``retry_after``;
* blocked/kicked/deactivated/"chat not found" — the chat's subscriptions end with the
  reason, the row and the chat's other pending rows fail, nothing is retried;
* migrated group — subscription and unsent rows move to the new chat, the part is resent
  there;
* other 400 — failed with the error, never retried;
* 5xx and connection errors — bounded exponential backoff, then failed;
* read timeout — ``uncertain``: the message may have arrived. With
  ``delivery.resend_uncertain`` (default True) the row is resent once, because a lost
  briefing is worse than a duplicate, and duplicates are counted in ``uncertain_count``;
* paid sending refused (a paid broadcast's Stars ran out) — the row goes back to
  ``pending`` and its broadcast on at the free rate; the admin is told once.

A row of a paid broadcast (``/broadcast paid``, with ``delivery.paid_broadcast`` on) is
sent with ``allow_paid_broadcast``: whether its broadcast sends paid is read from the
broadcast's stored options once per broadcast (keyed by the row's ``ref``) and kept, so
the rows in flight share one lookup; a refusal turns it off for this worker at once, and
for the others at their own next refusal, which requeues that row too.

A claim is a lease kept alive by this worker's heartbeat (``workers.last_seen``, renewed
every sixth of ``delivery.lease_seconds``). On every heartbeat the sender also settles the
rows of workers whose heartbeat expired, the same way as a read timeout; with
``exclusive`` (a SQLite file this process holds the lock on) every other worker is known
to be dead, so their rows are settled at once. Settling needs the row's claim token, so a
worker frozen past its lease cannot overwrite a row another worker has taken over.

Database errors are retried through :class:`DatabaseRetry` (sending resumes by itself
when the database answers again); an outage longer than ``give_up_seconds``, or an error
no retry can fix, ends :meth:`Sender.run` with that error, so the process can stop and be
restarted rather than sit "up" with its delivery dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ExtBot

from bot.config import DeliverySettings
from bot.delivery.broadcast import paid_stopped_notice
from bot.delivery.fleet import FleetBudget
from bot.delivery.group_commit import ProgressCommitter
from bot.delivery.outcome import Action, Outcome, classify
from bot.delivery.ratelimiter import BULK
from bot.storage.broadcasts import BROADCAST, BroadcastStore
from bot.storage.database import Database
from bot.storage.ledger import ChatSpacing, ClaimedDelivery, Delivery, DeliveryLedger
from bot.storage.payloads import Button, CopyPayload, MessagePart, Payload
from bot.storage.retry import DatabaseRetry
from bot.storage.subscriptions import Destination, SubscriptionStore
from bot.storage.workers import WorkerRegistry

__all__ = ["Sender", "keyboard_of", "utc_now"]

_LOG = logging.getLogger(__name__)
_PAYLOAD_CACHE = 1_000
_FORGET_WORKERS = timedelta(days=7)
_ASSUMED_LATENCY = 0.15  # seconds, until the first bulk sends are measured
_SLOTS_PER_SEND = 2.5  # slots per message a second per second it is held (inflight_target)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def keyboard_of(rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(b.text, callback_data=b.callback_data) if b.callback_data
         is not None else InlineKeyboardButton(b.text, url=b.url) for b in row]
        for row in rows
    ])


class Sender:
    """One delivery worker. ``run(stop)`` in production; ``run_once``/``drain`` in tests."""

    def __init__(
        self,
        db: Database,
        bot: ExtBot[Any],
        settings: DeliverySettings,
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        poll_seconds: float = 5.0,
        retry: DatabaseRetry | None = None,
        exclusive: bool = False,
        role: str = "all",
        problems: Callable[[], str | None] = lambda: None,
        spacing: ChatSpacing | None = None,
        fleet: FleetBudget | None = None,
    ) -> None:
        """``spacing`` and ``fleet``: a PostgreSQL fleet keeps Telegram's limits together
        (see :mod:`bot.delivery.fleet`); a single process keeps them in its limiter."""
        self._db = db
        self._bot = bot
        self._settings = settings
        self.worker_id = worker_id or f"worker-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.heartbeat_interval = self.lease / 6
        self._exclusive = exclusive
        self._role = role
        self._problems = problems
        self._spacing = spacing
        self._fleet = fleet
        self._poll = poll_seconds
        self._retry = retry or DatabaseRetry(settings.give_up_seconds)
        self._ledger = DeliveryLedger(db)
        self._workers = WorkerRegistry(db)
        self._progress = ProgressCommitter(self._ledger, self._retry)
        self._subs = SubscriptionStore(db)
        self._payloads: dict[str, Payload] = {}
        self._broadcasts = BroadcastStore(db)
        self._paid: dict[str, asyncio.Future[bool]] = {}  # broadcast ref -> sends paid
        self._wake: asyncio.Event | None = None
        self._requests: set[asyncio.Task[None]] = set()  # Bot API calls in flight
        self._abandoning = False
        self._crash: BaseException | None = None  # a delivery task that could not go on
        self._held: Counter[str] = Counter()  # claim token -> its rows this worker holds
        self.last_heartbeat: datetime | None = None
        self.stats: Counter[str] = Counter()
        self.sends: Counter[tuple[str, str]] = Counter()  # (kind, outcome) -> messages
        # What a sent row holds its slot for besides its Bot API calls (its commit, its
        # turn on the event loop; EWMA, seconds): slots are sized for it too.
        self.row_overhead: float | None = None

    # -- driving ---------------------------------------------------------------------

    def notify(self) -> None:
        """New rows exist: wake the run loop now instead of at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def _db_call(self, op: Callable[[], Awaitable[T]]) -> T:
        """A database operation, retried through outages (see :class:`DatabaseRetry`)."""
        return await self._retry.run(op)

    async def recover(self) -> int:
        """Settle the rows other workers left in ``sending``: those whose heartbeat is
        older than the lease, or every other worker's when this one is ``exclusive``."""
        now = self._clock()
        # A worker is presumed dead once it missed five heartbeats, so that checking every
        # sixth of the lease still settles its rows within the lease of its last one.
        live_since = None if self._exclusive else now - self.lease + self.heartbeat_interval
        count = await self._db_call(lambda: self._ledger.recover_orphans(
            self.worker_id, now, resend=self._settings.resend_uncertain,
            live_since=live_since, held=lambda: set(self._held)))
        if count:
            _LOG.warning("%d deliveries were in flight when a worker stopped; treated as "
                         "uncertain (resend=%s)", count, self._settings.resend_uncertain)
            self.stats["recovered"] += count
            self.notify()
        return count

    async def heartbeat(self) -> None:
        """Renew this worker's lease, then settle the rows of workers whose lease expired."""
        now = self._clock()
        if self.last_heartbeat is not None and now - self.last_heartbeat > self.lease:
            _LOG.warning("this worker did not renew its lease for %.0fs (was the process "
                         "frozen?); rows it held may have been taken over and will not be "
                         "settled by it", (now - self.last_heartbeat).total_seconds())
            self.stats["lease_lapsed"] += 1
        problem = self._problems()
        if not await self._db_call(lambda: self._workers.heartbeat(self.worker_id, now,
                                                                   problem)):
            await self._db_call(lambda: self._workers.register(self.worker_id, self._role,
                                                               now))
        if self.last_heartbeat is None or now.date() != self.last_heartbeat.date():
            # Once a day: forget processes gone for a week (their rows were settled then).
            await self._db_call(lambda: self._workers.prune(now - _FORGET_WORKERS))
        self.last_heartbeat = now
        await self.recover()

    async def _keep_lease(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.heartbeat_interval.total_seconds())
            if not stop.is_set():
                await self.heartbeat()

    async def _share_budget(self, stop: asyncio.Event) -> None:
        if self._fleet is not None:
            await self._fleet.run(stop)

    async def _claim(self, limit: int) -> list[ClaimedDelivery]:
        if len(self._payloads) > _PAYLOAD_CACHE:
            self._payloads.clear()
        return await self._db_call(lambda: self._claim_once(limit))

    async def _claim_once(self, limit: int) -> list[ClaimedDelivery]:
        """One claim attempt under a fresh token, held before the claim can commit (so a
        concurrent recovery never takes it). If the attempt fails, its commit may still
        have happened: the token is dropped and the next recovery settles such rows."""
        token = uuid.uuid4().hex
        self._held[token] += 1
        try:
            claimed = await self._ledger.claim(self.worker_id, limit, self._clock(),
                                               self._payloads, token=token,
                                               spacing=self._spacing)
        except BaseException:
            del self._held[token]
            raise
        self._held[token] += len(claimed) - 1
        if not self._held[token]:
            del self._held[token]
        return claimed

    def _release(self, token: str) -> None:
        self._held[token] -= 1
        if self._held[token] <= 0:
            del self._held[token]

    async def run_once(self) -> int:
        """Claim up to ``concurrency`` ready rows and settle them all; rows handled."""
        claimed = await self._claim(self._settings.concurrency)
        if claimed:
            await asyncio.gather(*(self._deliver_held(c) for c in claimed))
        return len(claimed)

    async def drain(self) -> int:
        """Run until no row is ready at the current clock time."""
        total = 0
        while handled := await self.run_once():
            total += handled
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set; keeps ``concurrency`` deliveries in flight and the
        lease renewed. Raises what could not be ridden out (see the module docstring)."""
        self._wake = asyncio.Event()
        self._abandoning = False  # a stopped sender may be run again
        self._crash = None
        now = self._clock()
        await self._db_call(lambda: self._workers.register(self.worker_id, self._role, now))
        await self.heartbeat()  # settles what a crashed predecessor left, at once
        inflight: set[asyncio.Task[None]] = set()
        stop_wait = asyncio.ensure_future(stop.wait())
        keeper = asyncio.ensure_future(self._keep_lease(stop))
        keeper.add_done_callback(self._task_ended)
        budget = asyncio.ensure_future(self._share_budget(stop))
        budget.add_done_callback(self._task_ended)
        try:
            while not stop.is_set():
                self._raise_crash()
                # A claim costs a transaction whatever its size: refill in batches (when
                # half the slots are free), not one row each time a delivery finishes.
                target = self.inflight_target()
                refill_at = max(1, target // 2)
                free = target - len(inflight)
                if inflight and free < refill_at:
                    await asyncio.wait({*inflight, stop_wait},
                                       return_when=asyncio.FIRST_COMPLETED)
                    continue
                # Cleared before the claim: rows committed while it runs wake the wait below
                # (cleared after it, their notice would be lost until the next poll).
                self._wake.clear()
                claimed = await self._claim(free)
                for c in claimed:
                    task = asyncio.ensure_future(self._deliver_held(c))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    task.add_done_callback(self._task_ended)
                if claimed:
                    continue
                wake_wait = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({wake_wait, stop_wait, *inflight},
                                       timeout=await self._idle_timeout(),
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    wake_wait.cancel()
            self._raise_crash()
        finally:
            stop_wait.cancel()
            keeper.cancel()
            budget.cancel()
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
            await asyncio.gather(keeper, budget, return_exceptions=True)
        await self._signed_off()

    def inflight_target(self) -> int:
        """How many sends to keep in flight: enough to reach the rate while each holds its
        slot (Little's law), at most ``delivery.concurrency``. A slot is held for the
        measured round trip ``L`` of the call and the row's measured overhead ``O`` around
        it (its commit above all), and for more, because slots are refilled in batches: a
        claim comes when half of the ``T`` slots are free, so about a quarter stand empty,
        and its ``T/2`` rows then go through the budget at the rate, waiting ``T/(4 rate)``
        on average. ``0.75 T = rate (L + O + T / (4 rate))`` gives ``T = 2 rate (L + O)``;
        :data:`_SLOTS_PER_SEND` adds a quarter for jitter. With Telegram 100 ms away, 25/s
        needs about 9 and 1,000/s about 300; more would only hold claims other workers could
        be sending. (Sized on 1.5 round trips alone, a paid fan-out at 1,000/s kept about 45
        of its 160 slots on the wire and sent 500/s: ``benchmarks/fleet.py``'s paid
        scenario.)"""
        limiter = self._bot.rate_limiter
        rate = float(getattr(limiter, "sending_rate",  # with the paid budget in use
                             getattr(limiter, "rate", self._settings.rate_per_second)))
        latency = getattr(limiter, "bulk_latency", None) or _ASSUMED_LATENCY
        held = latency + (self.row_overhead or 0.0)
        wanted = math.ceil(rate * held * _SLOTS_PER_SEND) + 2
        return max(1, min(self._settings.concurrency, wanted))

    def _note_overhead(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.row_overhead = seconds if self.row_overhead is None else (
            0.8 * self.row_overhead + 0.2 * seconds)

    async def _signed_off(self) -> None:
        """A clean stop: rows this worker still holds may be settled by others at once."""
        now = self._clock()
        try:
            await self._workers.stopped(self.worker_id, now)
        except Exception as error:  # the lease then simply expires
            _LOG.warning("could not mark this worker stopped: %s", error)

    def _task_ended(self, task: asyncio.Future[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        if self._crash is None:
            self._crash = task.exception()
        if self._wake is not None:
            self._wake.set()

    def _raise_crash(self) -> None:
        if self._crash is not None:
            raise self._crash

    async def _idle_timeout(self) -> float:
        upcoming = await self._db_call(self._ledger.next_not_before)
        if upcoming is None:
            return self._poll
        return min(self._poll, max(0.05, (upcoming - self._clock()).total_seconds()))

    # -- one row ---------------------------------------------------------------------

    async def _send_part(self, payload: Payload, index: int, dest: Destination, *,
                         paid: bool = False) -> None:
        """One part; ``paid`` sends it as a paid broadcast message, which the limiter
        budgets on the paid rate because the request carries ``allow_paid_broadcast``."""
        thread = dest.thread_id or None
        paid_flag = True if paid else None  # None: the parameter is left out
        if isinstance(payload, CopyPayload):
            await self._bot.copy_message(
                chat_id=dest.chat_id, from_chat_id=payload.from_chat_id,
                message_id=payload.message_id, message_thread_id=thread,
                allow_paid_broadcast=paid_flag, rate_limit_args=BULK,
            )
            return
        part: MessagePart = payload.parts[index]
        await self._bot.send_message(
            chat_id=dest.chat_id, text=part.html, parse_mode=ParseMode.HTML,
            message_thread_id=thread, reply_markup=keyboard_of(part.buttons),
            allow_paid_broadcast=paid_flag, rate_limit_args=BULK,
        )

    async def _sends_paid(self, row: Delivery) -> bool:
        """Whether ``row`` goes as a paid broadcast message (see the module notes). Never
        with ``delivery.paid_broadcast`` off: turning it off stops paying at once."""
        if row.kind != BROADCAST or not self._settings.paid_broadcast:
            return False
        known = self._paid.get(row.ref)
        if known is None:
            if len(self._paid) > _PAYLOAD_CACHE:
                self._paid = {k: f for k, f in self._paid.items() if not f.done()}
            broadcast_id = int(row.ref)
            known = self._paid[row.ref] = asyncio.ensure_future(
                self._db_call(lambda: self._broadcasts.sends_paid(broadcast_id)))
        try:
            return await asyncio.shield(known)
        except Exception:
            if self._paid.get(row.ref) is known:  # the next row asks again
                del self._paid[row.ref]
            raise

    async def _paid_refused(self, row: Delivery, token: str, outcome: Outcome) -> None:
        """Telegram refused paid sending: the row goes back to ``pending``, not ``failed``,
        and its broadcast goes on at the free rate. The worker that records the stop first
        tells the admin (one message for the broadcast, however many workers saw it)."""
        now = self._clock()
        free: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        free.set_result(False)
        self._paid[row.ref] = free
        await self._settle(row, "paid_refused", self._ledger.requeue, row.id, now, now,
                           error=outcome.reason, token=token)
        self.stats["paid_refused"] += 1
        broadcast_id = int(row.ref)
        if not await self._db_call(lambda: self._broadcasts.stop_paid(broadcast_id,
                                                                      outcome.reason, now)):
            return
        _LOG.warning("broadcast %d: Telegram refused paid sending (%s); going on at the "
                     "free rate", broadcast_id, outcome.reason)
        broadcast = await self._db_call(lambda: self._broadcasts.get(broadcast_id))
        if broadcast is None:
            return
        figures = await self._db_call(lambda: self._broadcasts.figures(broadcast_id))
        text = paid_stopped_notice(broadcast, outcome.reason, figures.waiting,
                                   self._settings.rate_per_second)
        try:  # a reply-like message: the interactive lane, not behind the fan-out
            await self._bot.send_message(broadcast.admin_chat_id, text,
                                         parse_mode=ParseMode.HTML)
        except TelegramError as error:  # the status message says it too
            _LOG.warning("could not tell the admin of broadcast %d that paid sending "
                         "stopped: %s", broadcast_id, error)

    def abandon_requests(self) -> int:
        """Cancel the Bot API calls in flight, and start no new ones (shutdown after the
        grace period). Database writes are not interrupted: a cancelled call leaves its row
        ``sending``, and the next start settles it as uncertain, as after a crash; a row
        whose next part was not started yet goes back to ``pending``."""
        self._abandoning = True
        for request in self._requests:
            request.cancel()
        return len(self._requests)

    async def _request(self, payload: Payload, index: int, dest: Destination, *,
                       paid: bool = False) -> None:
        """One Bot API call as a task of its own, so that :meth:`abandon_requests` can
        cancel the call without cancelling the delivery around it."""
        request = asyncio.ensure_future(self._send_part(payload, index, dest, paid=paid))
        self._requests.add(request)
        try:
            await request
        finally:
            self._requests.discard(request)

    async def _deliver_held(self, claimed: ClaimedDelivery) -> None:
        try:
            await self._deliver(claimed)
        finally:
            self._release(claimed.delivery.claim_token or "")

    async def _deliver(self, claimed: ClaimedDelivery) -> None:
        row, payload = claimed.delivery, claimed.payload
        token = row.claim_token or ""
        dest = row.destination
        part = row.parts_sent
        migrated = False
        began = time.monotonic()
        calling = 0.0  # seconds in Bot API calls (waiting for budget included)
        paid = await self._sends_paid(row)
        while part < payload.part_count:
            if self._abandoning:  # shutting down: this part was not sent, nor started
                now = self._clock()
                await self._settle(row, "requeued", self._ledger.requeue, row.id, now, now,
                                   error="worker stopped before sending", token=token)
                return
            call_began = time.monotonic()
            try:
                await self._request(payload, part, dest, paid=paid)
            except TelegramError as exc:
                outcome = classify(exc)
                if outcome.action is Action.PAID_REFUSED and paid:
                    await self._paid_refused(row, token, outcome)
                    return
                if outcome.action is Action.MIGRATED and not migrated and outcome.new_chat_id:
                    migrated = True
                    new_dest = await self._migrate(row, token, outcome.new_chat_id)
                    if new_dest is None:
                        return
                    dest = new_dest
                    continue
                await self._settle_error(row, token, dest, part, outcome)
                return
            except Exception as exc:  # a bug must not stall the queue or loop forever
                _LOG.exception("delivery %d failed unexpectedly", row.id)
                await self._settle(row, "failed", self._ledger.fail, row.id,
                                   f"internal error: {exc!r}", self._clock(), token=token)
                return
            calling += time.monotonic() - call_began
            part += 1
            done = part == payload.part_count
            await self._progress.part_sent(row.id, token, part, done, self._clock())
            self.stats["parts"] += 1
        self.stats["sent"] += 1
        self.sends[row.kind, "sent"] += 1
        self._note_overhead(time.monotonic() - began - calling)

    async def _settle(self, row: Delivery, outcome: str,
                      change: Callable[..., Awaitable[bool]], *args: Any,
                      **kwargs: Any) -> bool:
        """Apply one settling change to a claimed row; count it, or say it was fenced."""
        if await self._db_call(lambda: change(*args, **kwargs)):
            self.sends[row.kind, outcome] += 1
            return True
        _LOG.warning("delivery %d was taken over by another worker while this one held it; "
                     "leaving it to that worker", row.id)
        self.stats["fenced"] += 1
        return False

    async def _migrate(self, row: Delivery, token: str,
                       new_chat_id: int) -> Destination | None:
        now = self._clock()
        old = row.destination.chat_id
        await self._db_call(lambda: self._subs.migrate_chat(old, new_chat_id, now))
        if not await self._db_call(lambda: self._ledger.retarget(row.id, new_chat_id, now,
                                                                 token=token)):
            if await self._settle(row, "failed", self._ledger.fail, row.id,
                                  f"chat migrated to {new_chat_id}, which already has this "
                                  "message", now, token=token):
                self.stats["failed"] += 1
            return None
        _LOG.info("chat %d migrated to %d; subscription and unsent messages moved", old,
                  new_chat_id)
        self.stats["migrated"] += 1
        return Destination(new_chat_id, row.destination.thread_id)

    def _backoff(self, attempts: int) -> timedelta:
        s = self._settings
        seconds = min(s.backoff_seconds * 2 ** max(attempts - 1, 0), s.backoff_max_seconds)
        return timedelta(seconds=seconds)

    async def _settle_error(self, row: Delivery, token: str, dest: Destination, part: int,
                            outcome: Outcome) -> None:
        now = self._clock()
        action, reason = outcome.action, outcome.reason
        ledger = self._ledger
        if action is Action.RETRY_AFTER:
            await self._settle(row, "flood_requeued", ledger.requeue, row.id,
                               now + timedelta(seconds=outcome.retry_after), now,
                               error=reason, token=token)
            self.stats["flood_requeued"] += 1
        elif action is Action.CHAT_GONE:
            if not await self._settle(row, "blocked", ledger.fail, row.id, reason, now,
                                      token=token):
                return
            ended = await self._db_call(lambda: self._subs.end_chat(dest.chat_id, reason, now))
            dropped = await self._db_call(lambda: ledger.fail_unsent_for_chat(
                dest.chat_id, reason, now))
            _LOG.info("chat %d unreachable (%s): %d subscriptions ended, %d messages dropped",
                      dest.chat_id, reason, ended, dropped)
            self.stats["failed"] += 1
            self.stats["chats_gone"] += 1
        elif action is Action.TOPIC_GONE:
            if not await self._settle(row, "blocked", ledger.fail, row.id, reason, now,
                                      token=token):
                return
            await self._db_call(lambda: self._subs.end(dest, reason, now))
            await self._db_call(lambda: ledger.fail_unsent_for_chat(
                dest.chat_id, reason, now, thread_id=dest.thread_id))
            self.stats["failed"] += 1
        elif action is Action.TRANSIENT:
            attempts = row.attempts + 1
            if attempts >= self._settings.max_attempts:
                if await self._settle(row, "failed", ledger.fail, row.id, reason, now,
                                      attempts=attempts, token=token):
                    self.stats["failed"] += 1
            else:
                await self._settle(row, "retried", ledger.requeue, row.id,
                                   now + self._backoff(attempts), now, error=reason,
                                   attempts=attempts, token=token)
                self.stats["backoff"] += 1
        elif action is Action.UNCERTAIN:
            resend = self._settings.resend_uncertain and row.uncertain_count < 1
            await self._settle(row, "uncertain", ledger.mark_uncertain, row.id, reason, now,
                               resend=self._settings.resend_uncertain,
                               uncertain_count=row.uncertain_count, token=token)
            self.stats["uncertain_resent" if resend else "uncertain"] += 1
            _LOG.warning("delivery %d part %d: %s (resend=%s)", row.id, part + 1, reason,
                         resend)
        elif await self._settle(row, "failed", ledger.fail, row.id, reason, now,
                                token=token):  # REJECTED, or a second migration
            self.stats["failed"] += 1
