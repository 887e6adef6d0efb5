"""``python -m broadcast_relay -c broadcast.yaml``: the broadcast relay on its own."""

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from parta_common.config import ConfigProblem, load_yaml

from . import BroadcastConfig, setup_broadcasts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broadcast_relay")
    parser.add_argument("-c", "--config", required=True, type=Path)
    parser.add_argument("--section", default=None, help="read one top-level key of the file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_yaml(BroadcastConfig, args.config, args.section)
    except ConfigProblem as problem:
        print(f"configuration error: {problem}", file=sys.stderr)
        return 2
    if not config.token_secret:
        print("configuration error: token_secret is required", file=sys.stderr)
        return 2
    app = web.Application()
    setup_broadcasts(app, config)
    web.run_app(app, host=config.listen_host, port=config.listen_port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
