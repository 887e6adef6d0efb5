"""The development router in front of Synapse's workers (``make run-workers`` and tests).

Production puts nginx there (``config/nginx-synapse.conf``, same table); this is the
same routing in a few lines of aiohttp so that a developer's machine and the test suite
need no nginx. Requests go to the role :func:`devtools.workers.route` names, else to
main; a person's requests stick to one worker of a role (hash of the access token), as
Synapse advises for /sync. Each answer carries ``X-Parta-Upstream`` (which process
served it), so tests can see the routing happen.

    python -m devtools.router --port 8008 --upstreams '{"main": ["http://127.0.0.1:8010"], ...}'
"""

import argparse
import hashlib
import json
import logging

import aiohttp
from aiohttp import web

from devtools.workers import route

logger = logging.getLogger("parta.router")

# Hop-by-hop headers a proxy must not forward (RFC 9110 §7.6.1), plus ones aiohttp sets.
_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
        "content-encoding",
    }
)


def pick(upstreams: dict[str, list[str]], path: str, authorization: str) -> tuple[str, str]:
    """(role, base URL) for a request: the routed role's worker for this person, or main."""
    role = route(path) or "main"
    choices = upstreams.get(role) or upstreams["main"]
    if role not in upstreams:
        role = "main"
    index = int.from_bytes(hashlib.sha1(authorization.encode()).digest()[:4], "big")
    return role, choices[index % len(choices)]


def make_app(upstreams: dict[str, list[str]]) -> web.Application:
    app = web.Application(client_max_size=200 * 1024 * 1024)
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def start(app: web.Application) -> None:
        # No cap on connections upstream: aiohttp's default of 100 would queue the 101st
        # client's long-poll /sync behind the others' (a school morning holds 1,000).
        app[session_key] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )

    async def stop(app: web.Application) -> None:
        await app[session_key].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", request.query.get("access_token", ""))
        role, base = pick(upstreams, request.path, authorization)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
        headers["X-Forwarded-Proto"] = "http"
        body = await request.read()
        try:
            async with app[session_key].request(
                request.method,
                base + request.rel_url.raw_path_qs,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                answer = web.Response(status=upstream.status, body=payload)
                for key, value in upstream.headers.items():
                    if key.lower() not in _HOP:
                        answer.headers.add(key, value)
        except aiohttp.ClientError as e:
            logger.warning("upstream %s (%s) failed: %s", role, base, e)
            answer = web.json_response(
                {"errcode": "M_UNKNOWN", "error": f"upstream {role} unavailable"}, status=502
            )
        answer.headers["X-Parta-Upstream"] = role
        return answer

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_route("GET", "/_parta_router/health", health)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstreams", required=True, help="JSON: role -> [base URL]")
    args = parser.parse_args()
    upstreams = json.loads(args.upstreams)
    if "main" not in upstreams:
        parser.error("--upstreams needs a 'main' entry")
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(upstreams), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
