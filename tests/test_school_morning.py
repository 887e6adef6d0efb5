"""A small school morning on the real Synapse: the load tool's scenario at 100 pupils.

``bench/school_morning.py`` end to end (import, first sign-ins, rooms joined behind them,
initial syncs, every pupil long-polling while announcements and class chat messages go
out — on Element's /sync, then on Element X's sliding sync). Nothing is timed here: the
test checks that nothing errs and every message reaches everyone it should; the figures
belong to the benchmark.
"""

from pathlib import Path

import pytest

from bench.school_morning import run
from tests.bridge_env import bridge_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PUPILS = 100


async def test_a_school_morning_of_a_hundred_pupils(tmp_path: Path) -> None:
    with bridge_env(tmp_path) as env:
        report = await run(
            env,
            PUPILS,
            concurrency=20,
            senders=20,
            interval=2.0,
            delivery_s=10.0,
            samples=2,
            # A deadline so a stuck queue fails instead of hanging, not a figure.
            ready_limit_s=900,
            echo=lambda line: None,
            sliding=True,
        )
    assert report["errors"] == 0, report["error_samples"]
    pupils = report["import"]["pupils"]
    assert pupils >= PUPILS * 0.9
    # Every pupil (and the administrator) signed in; every one's rooms were joined.
    assert report["sign_ins"]["people"] == pupils + 1
    assert report["rooms_ready"]["not_ready"] == 0
    assert report["rooms_ready"]["ready"] == pupils + 1
    assert report["initial_sync"]["lazy"]["pupils"] == pupils
    # Announcements reach every pupil, class messages every classmate: all arrived.
    delivery = report["delivery"]
    assert delivery["syncing"] == pupils
    assert delivery["messages"] >= 2
    assert delivery["deliveries_expected"] >= pupils
    assert delivery["deliveries_missing"] == 0
    # The same on sliding sync (Element X): every message reaches everyone too.
    sliding = report["delivery_sliding"]
    assert sliding["client"] == "sliding"
    assert sliding["syncing"] == pupils
    assert sliding["messages"] >= 2
    assert sliding["deliveries_expected"] >= pupils
    assert sliding["deliveries_missing"] == 0
