"""Application wiring: handlers, defaults, jobs and services in one place."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from telegram import LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings, story_index_path
from bot.delivery.heartbeat import WorkerHeartbeat
from bot.delivery.ratelimiter import LaneRateLimiter
from bot.delivery.wiring import register_due_scan
from bot.errors import ConfigError
from bot.storage.database import Database
from bot.storage.owner_lock import DatabaseOwnerLock, sqlite_file
from bot.storage.retry import DatabaseRetry
from bot.stories.library import StoryLibrary
from bot.stories.watch import StoryWatcher
from bot.telegram import admin, broadcasting, reader, subscribers
from bot.telegram.commands import menu
from bot.telegram.context import BotApplication, BotContext, BotData, BotServices
from bot.telegram.engine import DeliveryEngine
from bot.telegram.guards import on_error, throttle_gate
from bot.telegram.inline import on_inline_query
from bot.telegram.jobs import supervised
from bot.telegram.observability import (
    TimedUpdateProcessor,
    build_metrics,
    build_monitoring_server,
    scan_observer,
)
from bot.telegram.refresh import catch_up_stories, rescan_job, rescan_stories
from bot.telegram.throttle import UserThrottle
from bot.telegram.transport import use_http_client

__all__ = ["ROLES", "Role", "build_application", "start_bot", "stop_bot"]

Role = Literal["all", "updates", "delivery"]
ROLES: tuple[Role, ...] = ("all", "updates", "delivery")

# New messages only: an *edited* command must never run again.
_NEW = filters.UpdateType.MESSAGE
# Channel administrators manage the channel's briefing by posting commands in it; reading
# commands stay out of channels, where every answer would be posted for all readers.
_NEW_OR_CHANNEL = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST


def _register_reader_handlers(app: BotApplication) -> None:
    app.add_handler(TypeHandler(Update, throttle_gate), group=-1)
    for name, callback in (("start", reader.on_start), ("help", reader.on_help),
                           ("latest", reader.on_latest), ("story", reader.on_story),
                           ("search", reader.on_search)):
        app.add_handler(CommandHandler(name, callback, filters=_NEW))
    # /story_<ref>[@bot]: the tappable reference printed under every story
    app.add_handler(MessageHandler(filters.Regex(reader.STORY_COMMAND_PATTERN) & _NEW,
                                   reader.on_story_command))
    app.add_handler(CallbackQueryHandler(reader.on_button, pattern=r"^(?:[ols]|open|more):"))
    app.add_handler(InlineQueryHandler(on_inline_query))


def _register_subscription_handlers(app: BotApplication) -> None:
    for name, callback in (
        ("subscribe", subscribers.on_subscribe), ("unsubscribe", subscribers.on_unsubscribe),
        ("time", subscribers.on_time), ("timezone", subscribers.on_timezone),
        ("follow", subscribers.on_follow), ("unfollow", subscribers.on_unfollow),
        ("pause", subscribers.on_pause), ("resume", subscribers.on_resume),
        ("mode", subscribers.on_mode), ("status", subscribers.on_status),
        ("settings", subscribers.on_settings),
    ):
        app.add_handler(CommandHandler(name, callback, filters=_NEW_OR_CHANNEL))
    app.add_handler(CallbackQueryHandler(subscribers.on_settings_button, pattern=r"^st:"))
    app.add_handler(ChatMemberHandler(subscribers.on_my_chat_member,
                                      ChatMemberHandler.MY_CHAT_MEMBER))
    app.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, subscribers.on_migrate))


def _register_admin_handlers(app: BotApplication) -> None:
    for name, callback in (("stats", admin.on_stats), ("reload", admin.on_reload),
                           ("broadcast", broadcasting.on_broadcast),
                           ("broadcasts", broadcasting.on_broadcasts),
                           ("cancel_broadcast", broadcasting.on_cancel_broadcast)):
        app.add_handler(CommandHandler(name, callback, filters=_NEW))
    app.add_handler(CallbackQueryHandler(broadcasting.on_broadcast_button, pattern=r"^bc:"))


def _register_fallbacks(app: BotApplication) -> None:
    app.add_handler(MessageHandler(filters.COMMAND & _NEW, reader.on_unknown))
    app.add_handler(MessageHandler(
        filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE & _NEW, reader.on_text))
    app.add_handler(CallbackQueryHandler(reader.on_button))  # anything else: stale button
    app.add_error_handler(on_error)


def build_application(settings: Settings, token: str, *,
                      library: StoryLibrary | None = None,
                      clock: Callable[[], datetime] | None = None,
                      role: Role = "all") -> BotApplication:
    """The bot's Application with services installed; nothing runs until it is started.

    ``clock`` (aware UTC "now") drives every schedule decision; tests and the sandbox's
    ``--now`` pass their own. ``role``: ``updates`` answers readers, ``delivery`` runs the
    due scan, alerts, the sender and broadcast progress, ``all`` (the default) does both.
    """
    services = BotServices(
        settings=settings,
        library=library or StoryLibrary(settings.stories.folder, settings.stories.timezone,
                                        index_path=story_index_path(settings)),
        throttle=UserThrottle(settings.telegram.commands_per_minute),
        role=role,
    )
    if clock is not None:
        services.clock = clock

    limiter = LaneRateLimiter.from_settings(settings.delivery)
    metrics = build_metrics(services, limiter)
    monitor = services.monitor = build_monitoring_server(services, metrics) \
        if settings.monitoring.port is not None else None

    watching: list[StoryWatcher] = []

    async def start_delivery(app: BotApplication, db: Database, retry: DatabaseRetry) -> None:
        engine = services.engine = DeliveryEngine.create(
            db, app.bot, services.library, settings, services.clock, status=services.status,
            retry=retry, exclusive=services.owner_lock is not None, role=role)
        services.wake_sender = engine.wake
        await rescan_stories(services)
        await engine.alerts.catch_up(await catch_up_stories(services), services.clock())
        jobs = app.job_queue
        assert jobs is not None
        register_due_scan(jobs, engine.scan, settings.delivery, clock=services.clock,
                          retry=retry, on_finished=scan_observer(services, metrics),
                          supervise=supervised)
        jobs.run_once(supervised("broadcast fan-out", broadcasting.resume_fan_outs_job),
                      when=0, name="resume-fan-outs")
        jobs.run_repeating(supervised("broadcast progress", broadcasting.progress_job),
                           first=1.0, name="broadcast-progress",
                           interval=max(0.5, settings.delivery.progress_interval_seconds / 2))
        await engine.sender.start()

    async def start_updates(app: BotApplication) -> None:
        if services.engine is None:  # an `updates` process: no sender to keep the lease
            await rescan_stories(services)
            heartbeat = WorkerHeartbeat(services.require_database(), "updates",
                                        services.clock, services.status.summary)
            await heartbeat.beat()
            jobs = app.job_queue
            assert jobs is not None
            jobs.run_repeating(supervised("heartbeat", heartbeat.job),
                               interval=heartbeat.interval(settings.delivery),
                               name="heartbeat")
        await app.bot.set_my_commands(menu())
        await admin.install_admin_menus(app.bot, services)

    async def post_init(app: BotApplication) -> None:
        services.bot_username = app.bot.username
        database_file = sqlite_file(settings.database.url)
        if database_file is not None:  # one bot per SQLite file; read-only tools may share
            if role != "all":
                raise ConfigError("--role", f"{role} needs PostgreSQL (database.url): on "
                                  "SQLite one process does everything (--role all)")
            services.owner_lock = DatabaseOwnerLock.acquire(database_file)
        db = services.database = await Database.open(settings.database.url)
        retry = services.db_retry = DatabaseRetry(settings.delivery.give_up_seconds,
                                                  services.status)
        if role in ("all", "delivery"):
            await start_delivery(app, db, retry)
        if role in ("all", "updates"):
            await start_updates(app)
        jobs = app.job_queue
        assert jobs is not None
        jobs.run_repeating(supervised("story rescan", rescan_job),
                           interval=settings.stories.rescan_seconds,
                           first=settings.stories.rescan_seconds, name="rescan")
        if settings.stories.watch:  # new files within a second; the rescan is the net
            watching.append(StoryWatcher(
                settings.stories.folder,
                lambda names: rescan_stories(services, names)))
            watching[0].start()
        if monitor is not None:  # `run` starts it earlier, while it waits for Telegram
            await monitor.start()

    async def post_stop(app: BotApplication) -> None:
        while watching:
            await watching.pop().stop()
        if services.engine is not None:
            await services.engine.sender.stop()

    async def post_shutdown(app: BotApplication) -> None:
        services.search_pool.close()
        if monitor is not None:
            await monitor.stop()
        if services.database is not None:
            await services.database.close()
            services.database = None
        if services.owner_lock is not None:
            services.owner_lock.release()
            services.owner_lock = None

    defaults = Defaults(parse_mode=ParseMode.HTML,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                        tzinfo=settings.briefing.default_timezone)
    context_types: ContextTypes[BotContext, dict[Any, Any], dict[Any, Any], BotData] = (
        ContextTypes(context=BotContext, bot_data=BotData))
    builder = (
        Application.builder()
        .token(token)
        .base_url(settings.telegram.base_url)
        .defaults(defaults)
        .context_types(context_types)
        .concurrent_updates(TimedUpdateProcessor(64, metrics))
        .rate_limiter(limiter)
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
    )
    use_http_client(builder, settings.telegram.http_client, settings.delivery.concurrency)
    app: BotApplication = builder.build()
    app.bot_data.services = services
    _register_reader_handlers(app)
    _register_subscription_handlers(app)
    _register_admin_handlers(app)
    _register_fallbacks(app)
    return app


async def start_bot(app: BotApplication, *, poll_timeout: float = 10.0) -> None:
    """Initialise, run ``post_init``, start handlers and long polling (what
    ``run_polling`` does, for callers that own the event loop: the sandbox and tests)."""
    await app.initialize()
    if app.post_init is not None:
        await app.post_init(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES)


async def stop_bot(app: BotApplication) -> None:
    assert app.updater is not None
    if app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
        if app.post_stop is not None:
            await app.post_stop(app)
    if app.post_shutdown is not None:
        await app.post_shutdown(app)
    await app.shutdown()
