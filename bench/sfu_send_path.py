"""The SFU's send path alone: ``python -m bench.sfu_send_path [--subscribers 30] [--rounds 7]``.

In this process, no peers: one published VP8 stream (the 640x480 noise clip, packetized
by aiortc, ≈ 3 packets a frame) fanned out by ``Slot.forward`` to N subscribers, each
with its own SRTP session (AES-128-GCM, as aiortc negotiates with Chrome) and its own UDP
socket sending to a receiving socket on 127.0.0.1 (drained between rounds, its CPU not
counted). Packets are handed over a frame at a time, each frame in one turn of an
asyncio loop, so the batched writers send at the end of the frame, as in the SFU. The
ways take turns; best round each; CPU time of this process (``time.process_time``)
while forwarding and sending, not while the sink is drained after each frame:

- *per packet* (the baseline, the SFU before batching): ``pylibsrtp.Session.protect``
  and one ``sendto`` per packet;
- *batched*: ``sfu.aiortc_hooks.RtpWriter`` — SRTP in place into one buffer per peer,
  then UDP GSO runs (``sfu.batching``);
- *batched without GSO*: the same writer, one ``sendto`` per packet at the flush (what
  runs where the kernel has no GSO).

Reported: delivered packets per CPU-second each way, and their ratio. The receive side
(unprotect, parse) is not in these three figures. A fourth, *whole path*, is the SFU's
forward path end to end in one process: each frame arrives SRTP-protected (AES-128-GCM)
in a UDP socket as a publisher would send it, and the SFU's burst reader
(``sfu.aiortc_hooks``: read, unprotect, parse, route) hands it to the same fan-out with
batched writers; its CPU time counts from the socket read to the last ``sendmsg``.
``bench.sfu_forwarding`` measures the whole SFU process (ICE, DTLS, RTCP, the loop).
"""

import argparse
import asyncio
import json
import os
import socket
import time
from types import SimpleNamespace
from typing import Any

from aiortc.rtcdtlstransport import RtpRouter, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from bench.sfu_forwarding import _CountingWriter, _slot, _vp8_payloads
from sfu import aiortc_hooks
from sfu.aiortc_hooks import RtpWriter
from sfu.batching import gso_available
from sfu.forwarding import PublishedStream
from sfu.metrics import ForwardingStats
from sfu.synthetic import encode_vp8_clip


class PerPacketWriter:
    """What ``RtpWriter.send_rtp`` did before batching: protect, ``sendto``, per packet."""

    def __init__(self, session: Session, sock: socket.socket, addr: Any) -> None:
        self._session, self._send, self._addr = session, sock.sendto, addr

    def send_rtp(self, data: bytes) -> bool:
        try:
            self._send(self._session.protect(data), self._addr)
        except BlockingIOError:
            return False
        return True

    def send_rtcp(self, data: bytes) -> bool:
        return True


# The clip (30 frames) goes through this many times a round.
REPEAT = 3


def _session(inbound: bool = False) -> Session:
    policy = Policy(
        key=bytes(range(28)),  # AES-128-GCM: 16-byte key + 12-byte salt
        ssrc_type=Policy.SSRC_ANY_INBOUND if inbound else Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def _fake_dtls(session: Session, sock: socket.socket, addr: Any) -> Any:
    """Just the attributes ``RtpWriter`` reads of aiortc's DTLS transport."""
    pair = SimpleNamespace(
        remote_addr=addr, protocol=SimpleNamespace(transport=SimpleNamespace(_sock=sock))
    )
    connection = SimpleNamespace(_nominated={1: pair})
    return SimpleNamespace(
        _state=State.CONNECTED, _tx_srtp=session, transport=SimpleNamespace(_connection=connection)
    )


def _frames(payloads: list[bytes]) -> list[list[RtpPacket]]:
    frames: list[list[RtpPacket]] = [[]]
    for seq, payload in enumerate(payloads):
        packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=3000 * len(frames))
        packet.payload = payload
        packet.ssrc = 1234
        # A frame's last packet: the next one starts a partition (S bit).
        frames[-1].append(packet)
        if seq + 1 < len(payloads) and payloads[seq + 1][0] & 0x10:
            packet.marker = 1
            frames.append([])
    return [f for f in frames if f]


class _Receiver:
    """A receiver as ``sfu.aiortc_hooks.hook_receiver`` leaves it: packets to a callback."""

    def __init__(self, on_rtp: Any) -> None:
        self._parta_on_rtp = on_rtp


def _whole_path(stream: PublishedStream) -> tuple[Any, socket.socket]:
    """The SFU's burst reader on a UDP socket, delivering to ``stream`` (and its feeder)."""
    router = RtpRouter()
    receiver: Any = _Receiver(stream.on_rtp)
    router.register_receiver(receiver, ssrcs=[], payload_types=[96])
    dtls: Any = SimpleNamespace(
        _state=State.CONNECTED,
        _rx_srtp=_session(inbound=True),
        _rtp_router=router,
        _rtp_header_extensions_map=HeaderExtensionsMap(),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    protocol = SimpleNamespace(datagram_received=lambda data, addr: None)
    transport = SimpleNamespace(_conn_lost=0, max_size=2048, _protocol=protocol)
    reader = aiortc_hooks._burst_reader(transport, sock, aiortc_hooks._srtp_receiver(dtls))
    return reader, sock


def _protected(frames: list[list[RtpPacket]], times: int) -> list[list[bytes]]:
    """``frames`` ``times`` over as a publisher's SRTP, sequence numbers going on."""
    session = _session()
    out: list[list[bytes]] = []
    seq = 0
    for _ in range(times):
        for frame in frames:
            protected = []
            for packet in frame:
                copy = RtpPacket(
                    payload_type=96,
                    marker=packet.marker,
                    sequence_number=seq % 65536,
                    timestamp=packet.timestamp,
                    ssrc=packet.ssrc,
                    payload=packet.payload,
                )
                protected.append(session.protect(copy.serialize()))
                seq += 1
            out.append(protected)
    return out


async def measure(subscribers: int, rounds: int) -> dict[str, Any]:
    clip = encode_vp8_clip(frames=30, width=640, height=480, bitrate=800_000, noise=True)
    frames = _frames(_vp8_payloads(clip))
    packets = sum(len(f) for f in frames)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sink.setblocking(False)
    addr = sink.getsockname()
    socks = []
    for _ in range(subscribers):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setblocking(False)
        socks.append(s)
    stats = ForwardingStats()
    parameters = RTCRtpReceiveParameters(
        codecs=[RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)]
    )
    ways: dict[str, list[Any]] = {
        "per_packet": [PerPacketWriter(_session(), s, addr) for s in socks],
        "batched": [RtpWriter(_fake_dtls(_session(), s, addr), stats) for s in socks],
        "batched_without_gso": [RtpWriter(_fake_dtls(_session(), s, addr), stats) for s in socks],
    }
    ways["whole_path"] = [RtpWriter(_fake_dtls(_session(), s, addr), stats) for s in socks]
    for writer in ways["batched_without_gso"]:
        writer.gso = False
    streams = {}
    for way, writers in ways.items():
        stream = PublishedStream("video", parameters, _CountingWriter(), 1, stats, 1.0)
        for writer in writers:
            _slot(stats, writer, stream)
        streams[way] = stream
    reader, inbound = _whole_path(streams["whole_path"])
    feeder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    arriving = iter(_protected(frames, REPEAT * rounds))

    def drain() -> int:
        n = 0
        while True:
            try:
                sink.recv(2048)
            except BlockingIOError:
                return n
            n += 1

    best: dict[str, float] = {}
    received: dict[str, int] = {}
    for _ in range(rounds):
        for way in ways:
            stream = streams[way]
            drain()
            cpu = 0.0
            received[way] = 0
            for frame in frames * REPEAT:
                if way == "whole_path":
                    for data in next(arriving):
                        feeder.sendto(data, inbound.getsockname())
                    start = time.process_time()
                    reader()  # reads the frame, forwards it, flushes the writers
                else:
                    start = time.process_time()
                    for packet in frame:
                        stream.on_rtp(packet)
                # The turn ends: the batched writers' flushes run (queued by call_soon).
                await asyncio.sleep(0)
                cpu += time.process_time() - start
                received[way] += drain()
            best[way] = min(best.get(way, cpu), cpu)
    for s in (sink, inbound, feeder, *socks):
        s.close()
    sent = packets * subscribers * REPEAT
    rates = {way: round(sent / cpu) for way, cpu in best.items()}
    return {
        "subscribers": subscribers,
        "packets_per_round": sent,
        "gso": gso_available(),
        "received_last_round": received,
        "packets_per_cpu_second": rates,
        "ratio_batched_over_per_packet": round(rates["batched"] / rates["per_packet"], 2),
        "ratio_whole_path_over_per_packet_send": round(
            rates["whole_path"] / rates["per_packet"], 2
        ),
        "us_per_packet": {way: round(1e6 * cpu / sent, 2) for way, cpu in best.items()},
        "machine_load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    result = asyncio.run(measure(args.subscribers, args.rounds))
    print(json.dumps(result, indent=2))
    rates = result["packets_per_cpu_second"]
    print(
        f"whole forward path in one process (receive, forward, protect, send), "
        f"{args.subscribers} subscribers: {rates['whole_path']:,} delivered packets per "
        f"CPU-second (goal ≥ 100,000); the send path alone {rates['batched']:,}, "
        f"before batching {rates['per_packet']:,}; load average "
        f"{result['machine_load_average']}"
    )


if __name__ == "__main__":
    main()
