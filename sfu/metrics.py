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


@dataclass(slots=True)
class LessonStats:
    lessons: int = 0
    participants: int = 0
    waiting: int = 0


class _SfuCollector(Collector):
    def __init__(
        self,
        forwarding: ForwardingStats,
        lessons: Callable[[], LessonStats],
        refusals: dict[str, int],
    ) -> None:
        self._forwarding = forwarding
        self._lessons = lessons
        self._refusals = refusals

    def collect(self) -> Iterator[Metric]:
        f = self._forwarding
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
        refused = CounterMetricFamily("parta_sfu_refusals", "Joins refused", labels=["code"])
        for code, n in sorted(self._refusals.items()):
            refused.add_metric([code], n)
        yield refused


class SfuMetrics:
    def __init__(self, lessons: Callable[[], LessonStats]) -> None:
        self.forwarding = ForwardingStats()
        self.refusals: dict[str, int] = {}
        self.registry = CollectorRegistry()
        self.registry.register(_SfuCollector(self.forwarding, lessons, self.refusals))

    def refused(self, code: str) -> None:
        self.refusals[code] = self.refusals.get(code, 0) + 1

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
