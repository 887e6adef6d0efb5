"""``python -m sfu -c sfu.yaml``: run the SFU."""

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from parta_common.config import ConfigProblem
from sfu.app import build_app
from sfu.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sfu", description="Parta SFU")
    parser.add_argument("-c", "--config", type=Path, required=True, help="YAML configuration")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aioice logs every candidate pair at INFO.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigProblem as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    attendance = None
    if config.homeserver_url:
        from sfu.attendance_client import ModuleAttendance

        attendance = ModuleAttendance(config.homeserver_url, config.token_secret)
    app = build_app(config, attendance)
    if attendance is not None:
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
