"""``python -m bridge -c bridge.yaml``: run the school bot."""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from bridge.app import BridgeApp
from bridge.config import load
from bridge.registration import Registration
from parta_common.config import ConfigProblem


async def _main(config_path: Path) -> int:
    config = load(config_path)
    app = BridgeApp(config, Registration.read(Path(config.appservice.registration)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.start()
    try:
        await stop.wait()
    finally:
        await app.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge", description="Parta's school bot")
    parser.add_argument("-c", "--config", type=Path, default=Path("bridge.yaml"))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_main(args.config))
    except ConfigProblem as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        with contextlib.suppress(Exception):
            logging.getLogger("bridge").error("cannot start: %s", e)
        print(f"cannot start: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
