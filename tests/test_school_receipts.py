"""A small read-receipt wave on the real Synapse: ``bench/school_receipts.py`` end to end.

Twenty pupils long-polling, one announcement per variant, every pupil reading it. Nothing
is timed: the test checks what each variant delivers — a public receipt reaches every
pupil syncing, a private one only its sender, a sync filter without ``m.receipt`` none
— and that nothing errs; the figures belong to the benchmark.
"""

from pathlib import Path

import pytest

from bench.school_receipts import DEFAULT_VARIANTS, run
from tests.bridge_env import bridge_env

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PUPILS = 20


async def test_a_read_receipt_wave_of_twenty_pupils(tmp_path: Path) -> None:
    with bridge_env(tmp_path) as env:
        report = await run(
            env, PUPILS, PUPILS, DEFAULT_VARIANTS.split(","), spread_s=1.0, echo=lambda _: None
        )
    assert report["errors"] == 0, report["error_samples"]
    waves = {w["variant"]: w for w in report["waves"]}
    n = waves["none"]["syncing"]
    assert n >= PUPILS * 0.9
    for variant in ("none", "m.read.private", "m.read", "m.read+filter"):
        assert waves[variant]["announcement_arrived"] == n, variant
    for variant in ("m.read.private", "m.read", "m.read+filter", "m.read/unsynced"):
        assert waves[variant]["receipts_posted"] == n, variant
    assert waves["none"]["receipts_delivered"] == 0
    # Each reader's private receipt reaches only the reader's own sync.
    assert waves["m.read.private"]["receipts_delivered"] == n
    # Every public receipt reaches every pupil syncing (the reader included).
    assert waves["m.read"]["receipts_delivered"] == n * n
    # Filtered out of the sync: no answer carries one.
    assert waves["m.read+filter"]["answers_with_receipts"] == 0
