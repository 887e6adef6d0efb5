"""The SFU's aiohttp application: lesson signalling, health, metrics, the lesson page."""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
from aiohttp import web

from broadcast_relay import setup_broadcasts
from parta_common.messages import Message
from sfu.aiortc_hooks import check_aiortc_version
from sfu.attendance import AttendanceSink, LoggingAttendance
from sfu.config import SfuConfig
from sfu.lesson_registry import Lessons
from sfu.metrics import SfuMetrics
from sfu.signalling import LessonSocket
from sfu.static import setup_static
from sfu.worker_pool import WorkerPool

PAGE_MISSING: Final = Message("sfu.lesson_page_missing")
STATIC: Final = Path(__file__).parent / "static"
LESSONS_KEY: Final = web.AppKey("lessons", Lessons)
METRICS_KEY: Final = web.AppKey("metrics", SfuMetrics)
CONFIG_KEY: Final = web.AppKey("config", SfuConfig)
WORKERS_KEY: Final = web.AppKey("workers", WorkerPool)


def build_app(
    config: SfuConfig,
    attendance: AttendanceSink | None = None,
    worker_argv: Sequence[str] | None = None,
) -> web.Application:
    """The SFU; with ``workers`` > 1 it starts them as ``worker_argv --worker N ...``
    (default: ``python -m sfu``; ``python -m sfu`` itself passes the module it was
    started as, so ``python -m tests.sfu_guard`` starts guarded workers)."""
    check_aiortc_version()
    app = web.Application()
    metrics = SfuMetrics(lambda: lessons.stats())
    pool: WorkerPool | None = None
    if config.workers > 1:
        argv = list(worker_argv or [sys.executable, "-m", "sfu"])
        pool = WorkerPool(config, argv, metrics.forwarding)
        metrics.workers = pool.view()
        app[WORKERS_KEY] = pool
    lessons = Lessons(config, metrics, attendance or LoggingAttendance(), pool)
    app[LESSONS_KEY] = lessons
    app[METRICS_KEY] = metrics
    app[CONFIG_KEY] = config
    socket = LessonSocket(lessons, config.token_secret, config.join_timeout)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/lesson/{room_id}/ws", socket)
    setup_static(app)  # the lesson page: /lesson/{room_id} and /lesson-assets/
    if config.broadcast is not None:  # WHIP ingest, HLS viewers (docs/broadcasts.md)
        setup_broadcasts(app, attrs.evolve(config.broadcast, token_secret=config.token_secret))

    async def on_startup(app: web.Application) -> None:
        if pool is not None:
            await pool.start()
        lessons.start()

    async def on_shutdown(app: web.Application) -> None:
        await lessons.stop()
        if pool is not None:
            await pool.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def _health(request: web.Request) -> web.Response:
    stats = request.app[LESSONS_KEY].stats()
    body: dict[str, Any] = {
        "status": "ok",
        "lessons": stats.lessons,
        "participants": stats.participants,
    }
    pool = request.app.get(WORKERS_KEY)
    if pool is not None:
        body["workers"] = pool.describe()
    return web.json_response(body)


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def _lesson_page(request: web.Request) -> web.StreamResponse:
    page = STATIC / "lesson.html"
    if not page.is_file():
        raise web.HTTPNotFound(text=PAGE_MISSING.format())
    return web.FileResponse(page)
