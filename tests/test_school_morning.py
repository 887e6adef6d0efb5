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
            poll_s=0.5,
            sliding=True,
        )
    assert report["errors"] == 0, report["error_samples"]
    pupils = report["import"]["pupils"]
    assert pupils >= PUPILS * 0.9
    # Everyone was put into the school-wide rooms behind the import; every pupil (and
    # the administrator) signed in; every one's rooms were joined.
    assert report["open_rooms"]["joined"] == report["open_rooms"]["people"]
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


async def test_a_morning_where_half_the_school_signs_in_during_the_messages(
    tmp_path: Path,
) -> None:
    """The staggered morning: the second half's first sign-ins (their rooms joined in the
    background) while the first half syncs and messages go out. Every message still
    reaches every syncing pupil, in both phases, and the joins reach them too."""
    with bridge_env(tmp_path) as env:
        report = await run(
            env,
            40,
            concurrency=10,
            senders=10,
            interval=2.0,
            delivery_s=8.0,
            samples=1,
            ready_limit_s=900,
            echo=lambda line: None,
            poll_s=0.5,
            staggered=True,
        )
    assert report["errors"] == 0, report["error_samples"]
    pupils = report["import"]["pupils"]
    late = report["late_sign_ins"]["people"]
    assert late == pupils - pupils // 2
    assert report["late_rooms_ready"]["not_ready"] == 0
    for key in ("delivery_while_joining", "delivery"):
        phase = report[key]
        assert phase["syncing"] == pupils - late
        assert phase["messages"] >= 2
        assert phase["deliveries_missing"] == 0
    # The school-wide rooms were joined behind the import, before the morning began
    # (``open_rooms_at_import``): the newcomers' joins into their class's rooms are what
    # came into the syncing classmates' timelines.
    assert report["open_rooms"]["joined"] == report["open_rooms"]["people"]
    assert report["delivery_while_joining"]["member_events_received"] > 0
