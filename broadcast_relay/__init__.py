"""Broadcasts: speakers publish over WHIP, anyone with a link watches HLS.

Mount into an aiohttp application with :func:`setup_broadcasts`, or run alone with
``python -m broadcast_relay -c broadcast.yaml``. See ``docs/broadcasts.md``.
"""

from aiohttp import web

from .config import BroadcastConfig
from .directory import Directory, ModuleDirectory
from .service import BroadcastService
from .viewer import add_routes as add_viewer_routes
from .whip import SERVICE_KEY
from .whip import add_routes as add_whip_routes

__all__ = ["SERVICE_KEY", "BroadcastConfig", "BroadcastService", "setup_broadcasts"]


def setup_broadcasts(
    app: web.Application, config: BroadcastConfig, directory: Directory | None = None
) -> None:
    """Add WHIP ingest, the viewer page, playlists and segments to ``app``."""
    if not config.token_secret:
        raise ValueError("broadcast: token_secret is required (the module's media.token_secret)")
    owned = directory is None
    module = ModuleDirectory(config.homeserver_url, config.token_secret, config.link_cache_seconds)
    service = BroadcastService(config, directory if directory is not None else module)
    app[SERVICE_KEY] = service
    add_whip_routes(app)
    add_viewer_routes(app)

    async def lifecycle(_app: web.Application):  # type: ignore[no-untyped-def]
        service.start()
        yield
        await service.stop()
        if owned:
            await module.close()

    app.cleanup_ctx.append(lifecycle)
