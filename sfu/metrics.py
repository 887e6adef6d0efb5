"""Prometheus metrics of one SFU process, in its own registry (no module globals).

The forwarding path counts in plain integers (:class:`ForwardingStats`): a labelled
Prometheus counter per packet would cost more than forwarding the packet. A collector
reads them when ``/metrics`` is scraped.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(slots=True)
class ForwardingStats:
    packets_audio: int = 0
    packets_video: int = 0
    bytes_audio: int = 0
    bytes_video: int = 0
    packets_dropped_blocked: int = 0
    # Forwarded packets the transport did not take (not connected, or the socket full).
    packets_unsent: int = 0
    keyframe_requests_join: int = 0
    keyframe_requests_subscriber: int = 0
    keyframe_requests_limited: int = 0
    nacks_answered: int = 0
    nacks_missed: int = 0
    sender_reports: int = 0
    # Between processes (docs/sfu.md, "Several processes"): packets relayed over the
    # local media channel (main → workers, workers → main), and those it did not take.
    packets_relayed: int = 0
    packets_relayed_up: int = 0
    packets_relay_dropped: int = 0


@dataclass(slots=True)
class LessonStats:
    lessons: int = 0
    participants: int = 0
    waiting: int = 0


@dataclass(slots=True)
class WorkerState:
    index: int
    alive: bool
    participants: int


@dataclass(slots=True)
class WorkersView:
    """What the metrics show of the worker processes (``sfu.worker_pool.WorkerPool``)."""

    totals: Callable[[], ForwardingStats]
    states: Callable[[], list[WorkerState]]
    restarts: Callable[[], int]


def add_stats(total: ForwardingStats, other: ForwardingStats) -> None:
    for name in ForwardingStats.__slots__:
        setattr(total, name, getattr(total, name) + getattr(other, name))


class _SfuCollector(Collector):
    def __init__(
        self,
        forwarding: ForwardingStats,
        lessons: Callable[[], LessonStats],
        refusals: dict[str, int],
        workers: "Callable[[], WorkersView | None]",
    ) -> None:
        self._forwarding = forwarding
        self._lessons = lessons
        self._refusals = refusals
        self._workers = workers

    def collect(self) -> Iterator[Metric]:
        f = self._forwarding
        workers = self._workers()
        if workers is not None:
            # One figure for the SFU: this process's counters plus the workers'.
            f = ForwardingStats()
            add_stats(f, self._forwarding)
            add_stats(f, workers.totals())
            up = GaugeMetricFamily(
                "parta_sfu_worker_up", "Worker process running (1) or not", labels=["worker"]
            )
            placed = GaugeMetricFamily(
                "parta_sfu_worker_participants",
                "Participants whose connection lives in the worker",
                labels=["worker"],
            )
            for state in workers.states():
                up.add_metric([str(state.index)], 1 if state.alive else 0)
                placed.add_metric([str(state.index)], state.participants)
            yield up
            yield placed
            yield CounterMetricFamily(
                "parta_sfu_worker_restarts", "Worker processes restarted", workers.restarts()
            )
        lessons = self._lessons()
        yield GaugeMetricFamily("parta_sfu_lessons", "Lessons with participants", lessons.lessons)
        yield GaugeMetricFamily(
            "parta_sfu_participants", "Participants admitted into lessons", lessons.participants
        )
        yield GaugeMetricFamily(
            "parta_sfu_waiting", "People in lesson waiting rooms", lessons.waiting
        )
        packets = CounterMetricFamily(
            "parta_sfu_packets_forwarded", "RTP packets sent to subscribers", labels=["kind"]
        )
        packets.add_metric(["audio"], f.packets_audio)
        packets.add_metric(["video"], f.packets_video)
        yield packets
        octets = CounterMetricFamily(
            "parta_sfu_bytes_forwarded", "RTP bytes sent to subscribers", labels=["kind"]
        )
        octets.add_metric(["audio"], f.bytes_audio)
        octets.add_metric(["video"], f.bytes_video)
        yield octets
        keyframes = CounterMetricFamily(
            "parta_sfu_keyframe_requests",
            "Keyframe requests (PLI) sent to publishers, by cause; 'limited' were suppressed",
            labels=["reason"],
        )
        keyframes.add_metric(["join"], f.keyframe_requests_join)
        keyframes.add_metric(["subscriber"], f.keyframe_requests_subscriber)
        keyframes.add_metric(["limited"], f.keyframe_requests_limited)
        yield keyframes
        yield CounterMetricFamily(
            "parta_sfu_nacks_answered", "Packets resent from the buffer on a NACK", f.nacks_answered
        )
        yield CounterMetricFamily(
            "parta_sfu_nacks_missed", "NACKed packets no longer in the buffer", f.nacks_missed
        )
        yield CounterMetricFamily(
            "parta_sfu_audio_dropped_blocked",
            "Audio packets dropped because a moderator muted the speaker",
            f.packets_dropped_blocked,
        )
        yield CounterMetricFamily(
            "parta_sfu_sender_reports", "RTCP sender reports sent", f.sender_reports
        )
        yield CounterMetricFamily(
            "parta_sfu_packets_unsent",
            "Packets to forward that the transport did not take (not connected, socket full)",
            f.packets_unsent,
        )
        relayed = CounterMetricFamily(
            "parta_sfu_packets_relayed",
            "Packets passed between the main process and workers (local sockets)",
            labels=["direction"],
        )
        relayed.add_metric(["to_workers"], f.packets_relayed)
        relayed.add_metric(["to_main"], f.packets_relayed_up)
        yield relayed
        yield CounterMetricFamily(
            "parta_sfu_packets_relay_dropped",
            "Packets between processes that the local socket did not take",
            f.packets_relay_dropped,
        )
        refused = CounterMetricFamily("parta_sfu_refusals", "Joins refused", labels=["code"])
        for code, n in sorted(self._refusals.items()):
            refused.add_metric([code], n)
        yield refused


class SfuMetrics:
    def __init__(self, lessons: Callable[[], LessonStats]) -> None:
        self.forwarding = ForwardingStats()
        self.refusals: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.workers: WorkersView | None = None
        self.registry.register(
            _SfuCollector(self.forwarding, lessons, self.refusals, lambda: self.workers)
        )

    def refused(self, code: str) -> None:
        self.refusals[code] = self.refusals.get(code, 0) + 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
