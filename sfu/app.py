"""The SFU's aiohttp application: lesson signalling, health, metrics, the lesson page."""

from pathlib import Path
from typing import Final

import attrs
from aiohttp import web

from sfu.aiortc_hooks import check_aiortc_version
from sfu.attendance import AttendanceSink, LoggingAttendance
from sfu.broadcast import setup_broadcasts
from sfu.config import SfuConfig
from sfu.lessons import Lessons
from sfu.metrics import SfuMetrics
from sfu.signalling import LessonSocket
from sfu.static import setup_static

STATIC: Final = Path(__file__).parent / "static"
LESSONS_KEY: Final = web.AppKey("lessons", Lessons)
METRICS_KEY: Final = web.AppKey("metrics", SfuMetrics)
CONFIG_KEY: Final = web.AppKey("config", SfuConfig)


def build_app(config: SfuConfig, attendance: AttendanceSink | None = None) -> web.Application:
    check_aiortc_version()
    app = web.Application()
    metrics = SfuMetrics(lambda: lessons.stats())
    lessons = Lessons(config, metrics, attendance or LoggingAttendance())
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
        lessons.start()

    async def on_shutdown(app: web.Application) -> None:
        await lessons.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    return app


async def _health(request: web.Request) -> web.Response:
    stats = request.app[LESSONS_KEY].stats()
    return web.json_response(
        {"status": "ok", "lessons": stats.lessons, "participants": stats.participants}
    )


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def _lesson_page(request: web.Request) -> web.StreamResponse:
    page = STATIC / "lesson.html"
    if not page.is_file():
        raise web.HTTPNotFound(text="Страница урока не установлена / The lesson page is missing")
    return web.FileResponse(page)
