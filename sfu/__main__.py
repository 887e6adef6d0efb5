"""``python -m sfu -c sfu.yaml``: run the SFU."""

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from parta_common.config import ConfigProblem
from sfu.app import build_app
from sfu.config import load_config
from sfu.worker_pool import launcher_argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sfu", description="Parta SFU")
    parser.add_argument("-c", "--config", type=Path, help="YAML configuration")
    parser.add_argument("--log-level", default="INFO")
    # Internal: how the main process starts its workers (sfu/worker_pool.py).
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--control-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--media-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--audio-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    prefix = f"worker {args.worker} " if args.worker is not None else ""
    logging.basicConfig(
        level=args.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s",
    )
    # aioice logs every candidate pair at INFO.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    if args.worker is not None:
        if args.control_fd is None or args.media_fd is None or args.audio_fd is None:
            parser.error("--worker needs --control-fd, --media-fd and --audio-fd")
        from sfu.worker_process import run_worker

        return run_worker(args.worker, args.control_fd, args.media_fd, args.audio_fd)
    if args.config is None:
        parser.error("the following arguments are required: -c/--config")
    try:
        config = load_config(args.config)
    except ConfigProblem as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    attendance = None
    if config.homeserver_url:
        from sfu.attendance_client import ModuleAttendance

        attendance = ModuleAttendance(
            config.homeserver_url,
            config.token_secret,
            journal=Path(config.data_dir) / "attendance-journal.sqlite3",
        )
    app = build_app(config, attendance, worker_argv=launcher_argv())
    if attendance is not None:
        app.on_startup.append(attendance.start)
        app.on_cleanup.append(attendance.on_cleanup)
    web.run_app(
        app,
        host=config.listen_host,
        port=config.listen_port,
        print=None,
        access_log=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
