"""Every use of aiortc's private API lives here; aiortc is pinned to the tested version.

aiortc's ``RTCRtpReceiver`` decodes everything it receives and ``RTCRtpSender`` encodes
what its track yields. An SFU needs neither: it takes RTP packets as they come out of
SRTP and writes rewritten packets into another peer's SRTP. So, on the transceivers of a
participant's peer connection, before aiortc starts them:

- :func:`hook_receiver` replaces ``receive`` (which would start a decoder thread and an
  RTCP loop) with a registration in the DTLS transport's RTP router, and routes parsed
  packets to a callback instead of the jitter buffer;
- :func:`hook_sender` replaces ``send`` (which would start the encode loop and sender
  reports) with a registration for RTCP routing, and routes the subscriber's RTCP
  (NACK, PLI, FIR, receiver reports) to a callback;
- :class:`RtpWriter` protects and sends ready RTP/RTCP bytes on the peer's transport
  synchronously (no per-packet coroutine chain);
- :func:`lenient_consent` and :func:`read_in_bursts` keep busy connections alive.

``tests/test_sfu_hooks.py`` checks these against the real aiortc.

Longer than 600 lines because every touch of aiortc's private API is kept in this one
file (receiver, sender, the lean receive parse, burst reads and consent), so that an
aiortc upgrade is checked against one file and one test module.
"""

import asyncio
import functools
import logging
import math
import random
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

import aioice.ice
import aioice.stun
import aiortc
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.clock import current_ms
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    HeaderExtensions,
    RtcpPsfbPacket,
    RtpPacket,
    unpack_remb_fci,
)
from pylibsrtp import SRTP_MAX_TRAILER_LEN
from pylibsrtp._binding import ffi as srtp_ffi  # type: ignore[import-not-found]
from pylibsrtp._binding import lib as srtp_lib

from sfu.batching import GsoRefused, gso_available, send_datagrams
from sfu.metrics import ForwardingStats
from sfu.rtp import RTP_HEADER

AIORTC_VERSION: Final = "1.16.0"

logger = logging.getLogger(__name__)


class UnsupportedAiortc(RuntimeError):
    pass


def check_aiortc_version() -> None:
    if aiortc.__version__ != AIORTC_VERSION:
        raise UnsupportedAiortc(
            f"the SFU hooks aiortc internals and needs aiortc=={AIORTC_VERSION}, "
            f"found {aiortc.__version__}"
        )


def offered_direction(transceiver: RTCRtpTransceiver) -> str | None:
    """The direction the remote offer asks of us for this transceiver (ours, not theirs)."""
    direction: str | None = transceiver._offerDirection
    return direction


def hook_receiver(
    receiver: RTCRtpReceiver,
    on_start: Callable[[RTCRtpReceiveParameters], None],
    on_rtp: Callable[[RtpPacket], None],
) -> None:
    """Take over ``receiver``: no decoder, no jitter buffer; packets go to ``on_rtp``."""
    if getattr(receiver, "_parta_hooked", False):
        return
    started = False

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        nonlocal started
        if started:
            return
        started = True
        receiver.transport._register_rtp_receiver(receiver, parameters)
        on_start(parameters)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_rtp(packet)

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        # Sender reports and BYEs from the publisher: nothing to do for forwarding.
        return

    async def stop() -> None:
        if started:
            receiver.transport._unregister_rtp_receiver(receiver)

    _patch(receiver, receive=receive, _handle_rtp_packet=handle_rtp_packet, _parta_on_rtp=on_rtp)
    _patch(receiver, _handle_rtcp_packet=handle_rtcp_packet, stop=stop, _parta_hooked=True)


def hook_sender(
    sender: RTCRtpSender,
    on_start: Callable[[RTCRtpSendParameters], None],
    on_rtcp: Callable[[AnyRtcpPacket], None],
) -> None:
    """Take over ``sender``: no encoder, no RTP loop; the subscriber's RTCP goes to ``on_rtcp``."""
    if getattr(sender, "_parta_hooked", False):
        return
    started = False

    async def send(parameters: RTCRtpSendParameters) -> None:
        nonlocal started
        if started:
            return
        started = True
        sender.transport._register_rtp_sender(sender, parameters)
        on_start(parameters)

    async def handle_rtcp_packet(packet: AnyRtcpPacket) -> None:
        on_rtcp(packet)

    async def stop() -> None:
        if started:
            sender.transport._unregister_rtp_sender(sender)

    _patch(sender, send=send, _handle_rtcp_packet=handle_rtcp_packet, stop=stop)
    _patch(sender, _parta_hooked=True)


def sender_ssrc(sender: RTCRtpSender) -> int:
    ssrc: int = sender._ssrc
    return ssrc


def dtls_transport(pc: RTCPeerConnection) -> RTCDtlsTransport | None:
    """The one (bundled) DTLS transport of ``pc``, once it has transceivers."""
    for transceiver in pc.getTransceivers():
        transport: RTCDtlsTransport = transceiver.receiver.transport
        return transport
    return None


# Protected RTP one writer holds before it must send: a few frames' worth.
BATCH_BYTES: Final = 64 * 1024
# What pylibsrtp's own ``protect`` accepts (its 1,500-byte buffer less the trailer).
MAX_RTP_BYTES: Final = 1500 - SRTP_MAX_TRAILER_LEN
# pylibsrtp (libsrtp 2) ``srtp_protect(ctx, buffer, &length)`` protects in place; with
# another signature the writer goes through ``Session.protect`` and copies.
_srtp_protect: Final = srtp_lib.srtp_protect
_PROTECT_IN_PLACE: Final = (
    str(srtp_ffi.typeof(srtp_lib.srtp_protect))
    == "<ctype 'srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)'>"
)


class RtpWriter:
    """Sends ready RTP/RTCP bytes through one peer's SRTP session and ICE pair.

    It writes straight to the nominated pair's UDP socket (the asyncio transport's
    checks cost as much as the rest of forwarding), and drops a packet the kernel
    will not take at once, as a router would.

    RTP is batched: each packet is SRTP-protected at once, in place, into one buffer
    (libsrtp through pylibsrtp's binding, per packet as before, without pylibsrtp's
    copy in and copy out), and the buffer goes out at the end of the event loop's
    turn (``sfu.batching``: runs of equal-sized packets in one ``sendmsg`` with UDP
    GSO where the kernel has it, else one ``sendto`` each). All slots of one peer
    share its writer (:meth:`shared`), so a subscriber's packets of a turn go out
    together. RTCP goes out at once, unbatched.
    """

    def __init__(self, transport: RTCDtlsTransport, stats: ForwardingStats | None = None) -> None:
        self._dtls = transport
        self._stats = stats
        self._pair: Any = None
        self._send: Callable[[bytes, Any], object] | None = None
        self._sock: socket.socket | None = None
        self._addr: Any = None
        self._session: Any = None
        self._ctx: Any = None
        self._buffer = srtp_ffi.new("char[]", BATCH_BYTES)
        self._view = memoryview(srtp_ffi.buffer(self._buffer))
        self._length = srtp_ffi.new("int *")
        self._lengths: list[int] = []
        self._used = 0
        self._flush_scheduled = False
        self.gso = gso_available()

    @classmethod
    def shared(
        cls, transport: RTCDtlsTransport, stats: ForwardingStats | None = None
    ) -> "RtpWriter":
        """The one writer of ``transport`` (made on first use)."""
        writer = getattr(transport, "_parta_writer", None)
        if not isinstance(writer, cls):
            writer = cls(transport, stats)
            _patch(transport, _parta_writer=writer)
        return writer

    def _route(self) -> Callable[[bytes, Any], object] | None:
        dtls = self._dtls
        if dtls._state is not State.CONNECTED:
            return None
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return None
        if pair is not self._pair:
            self.flush()
            self._pair = pair
            self._addr = pair.remote_addr
            udp = pair.protocol.transport
            # asyncio's datagram transport keeps its socket in ``_sock``; a TURN relay
            # has none of its own and goes through its transport.
            sock = getattr(udp, "_sock", None)
            self._sock = sock if isinstance(sock, socket.socket) else None
            self._send = sock.sendto if isinstance(sock, socket.socket) else udp.sendto
        return self._send

    def send_rtp(self, data: bytes) -> bool:
        """Protect ``data`` and queue it for the end of this loop turn (False: no route)."""
        dtls = self._dtls
        if (self._pair is None or dtls._state is not State.CONNECTED) and self._route() is None:
            return False
        session = dtls._tx_srtp
        if session is not self._session:
            self._session = session
            self._ctx = session._srtp[0]
        size = len(data)
        if size > MAX_RTP_BYTES:
            raise ValueError("packet is too long")
        used = self._used
        if used + size + SRTP_MAX_TRAILER_LEN > BATCH_BYTES:
            self.flush()
            used = 0
        if _PROTECT_IN_PLACE:
            self._view[used : used + size] = data
            length = self._length
            length[0] = size
            if _srtp_protect(self._ctx, self._buffer + used, length):
                return False
            size = length[0]
        else:  # pragma: no cover - another libsrtp binding
            protected = session.protect(data)
            size = len(protected)
            self._view[used : used + size] = protected
        self._lengths.append(size)
        self._used = used + size
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if _held.reading:
                _held.writers.append(self)
            else:
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:
                    self.flush()
        return True

    def flush(self) -> None:
        """Send what is queued now (normally called by the loop at the end of a turn)."""
        self._flush_scheduled = False
        lengths = self._lengths
        if not lengths:
            return
        self._lengths = []
        self._used = 0
        sent = 0
        try:
            if self._pair is not None and self._dtls._state is State.CONNECTED:
                sent = self._write(lengths)
        except OSError:
            self._pair = None
        if sent < len(lengths) and self._stats is not None:
            self._stats.packets_unsent += len(lengths) - sent

    def _write(self, lengths: list[int]) -> int:
        sock = self._sock
        if sock is None:
            send = self._send
            assert send is not None
            offset = 0
            for sent, size in enumerate(lengths):
                try:
                    send(bytes(self._view[offset : offset + size]), self._addr)
                except (BlockingIOError, InterruptedError):
                    return sent
                offset += size
            return len(lengths)
        try:
            return send_datagrams(sock, self._addr, self._view, lengths, self.gso)
        except GsoRefused as refused:
            logger.info("UDP GSO refused by the kernel; sending datagrams one by one")
            self.gso = False
            offset = sum(lengths[: refused.sent])
            rest = send_datagrams(
                sock, self._addr, self._view[offset:], lengths[refused.sent :], False
            )
            return refused.sent + rest

    def send_rtcp(self, data: bytes) -> bool:
        send = self._route()
        if send is None:
            return False
        try:
            send(self._dtls._tx_srtp.protect_rtcp(data), self._addr)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self._pair = None
            return False
        return True


# Datagrams read from one UDP socket per turn of the event loop (asyncio reads one).
READS_PER_WAKE: Final = 32


def read_in_bursts(pc: RTCPeerConnection) -> None:
    """Read each of ``pc``'s UDP sockets up to ``READS_PER_WAKE`` datagrams at a time.

    asyncio's datagram transport reads one datagram each time the loop polls, so when
    a loop turn is long (a busy SFU process) a publisher's socket, with hundreds of
    packets a second, is read slower than it fills: the kernel drops packets, the ICE
    consent answers among them, and after 30 s the publisher is cut off. Subscribers'
    sockets, nearly silent, never show it. Draining a few datagrams per turn keeps
    reading ahead of arrival.
    """
    loop = asyncio.get_running_loop()
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        connection = dtls.transport._connection
        for protocol in connection._protocols:
            transport = getattr(protocol, "transport", None)
            sock = getattr(transport, "_sock", None)
            if not isinstance(sock, socket.socket) or getattr(transport, "_parta_bursts", False):
                continue
            _patch(transport, _parta_bursts=True)
            reader = _burst_reader(transport, sock, _srtp_receiver(dtls))
            # After the transport's own registration (also made with call_soon).
            loop.call_soon(loop._add_reader, sock.fileno(), reader)  # type: ignore[attr-defined]


_pending: set["asyncio.Future[None]"] = set()


def _srtp_receiver(dtls: RTCDtlsTransport) -> Callable[[bytes], bool]:
    """Delivers SRTP media straight to a hooked receiver; False: not handled here.

    On the way aiortc takes, each datagram is tried as STUN by aioice, queued, picked
    up by the DTLS transport's task (a wake-up per packet), unprotected and routed to
    the receiver's coroutine. Once DTLS is up, RTP for a receiver taken over by
    :func:`hook_receiver` needs none of that: unprotect (pylibsrtp), parse, route,
    call. STUN, DTLS, RTCP, and anything that fails here, go aiortc's way as before.

    Once a packet of an SSRC has been routed to a hooked receiver, the SSRC's later
    packets take a shorter way still: unprotected in place in one buffer (libsrtp
    through pylibsrtp's binding, without its copy in and copy out), their header read
    with one ``struct`` call and only the audio-level extension looked for
    (:func:`parse_received`: no extension objects, no ``mid`` decoding), while
    aiortc's router still names that receiver for the SSRC.
    """
    buffer = srtp_ffi.new("char[]", RX_BUFFER_BYTES)
    view = memoryview(srtp_ffi.buffer(buffer))
    length = srtp_ffi.new("int *")
    # SSRC -> (its receiver, what takes its packets, the extension ids to read).
    routes: dict[int, tuple[Any, Callable[[RtpPacket], None], int, int]] = {}
    router = dtls._rtp_router
    session: Any = None
    ctx: Any = None

    def receive(data: bytes) -> bool:
        nonlocal session, ctx
        if dtls._state is not State.CONNECTED or len(data) < 12 or not 127 < data[0] < 192:
            return False
        if 192 <= data[1] <= 208:  # RTCP (aiortc's is_rtcp)
            return False
        size = len(data)
        ssrc = _SSRC.unpack_from(data, 8)[0]
        route = routes.get(ssrc)
        if route is not None and size <= RX_BUFFER_BYTES:
            receiver, on_rtp, audio_level_id, abs_send_time_id = route
            payload_types = router.payload_type_table.get(data[1] & 0x7F, ())
            if router.ssrc_table.get(ssrc) is receiver and receiver in payload_types:
                rx = dtls._rx_srtp
                if rx is not session:
                    session, ctx = rx, rx._srtp[0]
                view[:size] = data
                length[0] = size
                if srtp_lib.srtp_unprotect(ctx, buffer, length):
                    return False
                received = parse_received(view[: length[0]], audio_level_id, abs_send_time_id)
                if received is None:
                    return False
                on_rtp(received)
                return True
            del routes[ssrc]
        try:  # CONNECTED: the SRTP sessions exist
            packet = RtpPacket.parse(dtls._rx_srtp.unprotect(data), dtls._rtp_header_extensions_map)
        except (pylibsrtp.Error, ValueError):
            return False
        receiver = router.route_rtp(packet)
        if receiver is None:
            return True
        ids = dtls._rtp_header_extensions_map._HeaderExtensionsMap__ids  # type: ignore[attr-defined]
        hooked = getattr(receiver, "_parta_on_rtp", None)
        if hooked is not None:
            routes[packet.ssrc] = (receiver, hooked, ids.audio_level or 0, 0)
        else:
            # aiortc's own receiver (the broadcast relay's), which reads the send time
            # for its bandwidth estimate (REMB).
            hooked = _aiortc_receiving(receiver)
            routes[packet.ssrc] = (receiver, hooked, ids.audio_level or 0, ids.abs_send_time or 0)
        hooked(packet)
        return True

    return receive


def _aiortc_receiving(receiver: Any) -> Callable[[RtpPacket], None]:
    """What aiortc's transport does with a packet for ``receiver``, on this stack."""

    def deliver(packet: RtpPacket) -> None:
        run_now(receiver._handle_rtp_packet(packet, arrival_time_ms=current_ms()))

    return deliver


# What pylibsrtp's session buffers hold; a longer datagram goes aiortc's way.
RX_BUFFER_BYTES: Final = 1500
_SSRC: Final = struct.Struct("!I")
_EXTENSION_HEADER: Final = struct.Struct("!HH")


class ReceivedRtp(RtpPacket):
    """An RTP packet as :func:`parse_received` reads it: header fields, payload, padding
    size, and of the header extensions only the audio level (RFC 6464) and the absolute
    send time; CSRCs are skipped."""

    def __init__(
        self,
        marker: int,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes,
        extensions: HeaderExtensions,
        padding_size: int,
    ) -> None:
        self.version = 2
        self.marker = marker
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrc = []
        self.extensions = extensions
        self.payload = payload
        self.padding_size = padding_size


# Shared by every packet without an audio level (nothing writes to it).
_NO_EXTENSIONS: Final = HeaderExtensions()


def parse_received(
    data: memoryview, audio_level_id: int, abs_send_time_id: int = 0
) -> ReceivedRtp | None:
    """An unprotected RTP packet (version 2 checked by the caller), or None if malformed.

    The same fields and the same refusals as aiortc's ``RtpPacket.parse`` (truncated
    CSRCs or extension block, bad padding), without building its extension objects:
    only the extensions with the ids given (0: not wanted) are read.
    """
    size = len(data)
    first, second, sequence_number, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    pos = 12 + 4 * (first & 0x0F)
    if size < pos:
        return None
    extensions = _NO_EXTENSIONS
    if first & 0x10:
        if size < pos + 4:
            return None
        profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
        start = pos + 4
        pos = start + 4 * words
        if size < pos:
            return None
        if audio_level_id or abs_send_time_id:
            extensions = _read_extensions(
                data, start, pos, profile, audio_level_id, abs_send_time_id
            )
    end = size
    padding = 0
    if first & 0x20:
        padding = data[size - 1]
        if not padding or padding > size - pos:
            return None
        end -= padding
    return ReceivedRtp(
        second >> 7,
        second & 0x7F,
        sequence_number,
        timestamp,
        ssrc,
        data[pos:end].tobytes(),
        extensions,
        padding,
    )


def _read_extensions(
    data: memoryview, pos: int, end: int, profile: int, audio_level_id: int, abs_send_time_id: int
) -> HeaderExtensions:
    """The audio level and absolute send time in a one- or two-byte-header block.

    Read as aiortc reads the block (the last element with an id counts; profile
    0x1000 only for two-byte headers); where aiortc would refuse a truncated block,
    what was read before the truncation is kept.
    """
    level = None
    send_time = None
    two_bytes = profile == 0x1000
    if not two_bytes and profile != 0xBEDE:
        return _NO_EXTENSIONS
    while pos < end:
        byte = data[pos]
        if byte == 0:  # padding
            pos += 1
            continue
        if two_bytes:
            if end < pos + 2:
                break
            ext_id, size = byte, data[pos + 1]
            pos += 2
        else:
            ext_id, size = byte >> 4, (byte & 0x0F) + 1
            pos += 1
        if end < pos + size:
            break
        if ext_id == audio_level_id and size:
            value = data[pos]
            level = (bool(value & 0x80), value & 0x7F)
        elif ext_id == abs_send_time_id and size == 3:
            send_time = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
        pos += size
    if level is None and send_time is None:
        return _NO_EXTENSIONS
    return HeaderExtensions(audio_level=level, abs_send_time=send_time)


def run_now(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on this stack; if it suspends, a task finishes it.

    aiortc's receiver handles a packet in a coroutine that, on a host UDP pair, never
    suspends (its RTCP sends reach ``sendto`` synchronously), so a task per packet
    would only add a wake-up. Should it suspend (a TURN relay's send), the rest runs
    in a task, as asyncio would have run it.
    """
    try:
        waiting = coro.send(None)
    except StopIteration:
        return
    except Exception:
        logger.exception("handling an RTP packet failed")
        return
    task = asyncio.ensure_future(_resume(coro, waiting))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    while True:
        try:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                # What a task does with a yielded future: take over the wait.
                waiting._asyncio_future_blocking = False
                await waiting
        except BaseException as exc:  # the awaited future failed: raise it in ``coro``
            step: Callable[[], Any] = functools.partial(coro.throw, exc)
        else:
            # A future's __await__ reads its own result; the value sent is ignored.
            step = functools.partial(coro.send, None)
        try:
            waiting = step()
        except StopIteration:
            return


class _HeldFlushes:
    """Writers that queued packets while a burst reader ran: flushed when it ends.

    What a burst of datagrams makes the SFU forward then leaves in the same turn of
    the loop, without one more turn (and ``epoll`` call) for the writers' flushes.
    """

    def __init__(self) -> None:
        self.reading = False
        self.writers: list[RtpWriter] = []

    def flush(self) -> None:
        self.reading = False
        writers, self.writers = self.writers, []
        for writer in writers:
            writer.flush()


_held = _HeldFlushes()


def _burst_reader(
    transport: Any, sock: socket.socket, srtp: Callable[[bytes], bool]
) -> Callable[[], None]:
    def read_ready() -> None:
        _held.reading = True
        try:
            for _ in range(READS_PER_WAKE):
                if transport._conn_lost:
                    return
                try:
                    data, addr = sock.recvfrom(transport.max_size)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    transport._protocol.error_received(exc)
                    return
                if not srtp(data):
                    transport._protocol.datagram_received(data, addr)
        finally:
            _held.flush()

    return read_ready


# libwebrtc's REMB pacing: at most one per interval unless the estimate falls further.
REMB_INTERVAL: Final = 0.2
REMB_DROP: Final = 0.97


def pace_remb(receiver: RTCRtpReceiver, clock: Callable[[], float] = time.monotonic) -> None:
    """Send ``receiver``'s REMBs as libwebrtc does: one per ``REMB_INTERVAL`` seconds,
    at once only when the estimate falls below ``REMB_DROP`` of the last one sent.

    aiortc's remote bitrate estimator asks for a REMB on every packet while its
    detector sees overuse, which a busy machine's arrival jitter looks like: the
    broadcast relay then protected and sent a REMB for half its speaker's packets or
    more. Other RTCP (NACK, PLI, receiver reports) goes out as before.
    """
    send = receiver._send_rtcp
    last_time = -math.inf
    last_bitrate = 0

    async def send_rtcp(packet: AnyRtcpPacket) -> None:
        nonlocal last_time, last_bitrate
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            bitrate = unpack_remb_fci(packet.fci)[0]
            now = clock()
            if now - last_time < REMB_INTERVAL and bitrate >= last_bitrate * REMB_DROP:
                return
            last_time, last_bitrate = now, bitrate
        await send(packet)

    _patch(receiver, _send_rtcp=send_rtcp)


# RFC 7675: consent is lost after 30 s without any answer to the checks.
CONSENT_TIMEOUT: Final = 30.0


def lenient_consent(pc: RTCPeerConnection) -> None:
    """Make ``pc``'s ICE consent checks forgiving, as browsers' are.

    aioice gives each check a single try with a 0.5 s timeout and gives up after six
    misses in a row, so a client that answers late for half a minute (a busy laptop, a
    congested uplink) is cut off although it is there. Here a check is retransmitted
    and consent is lost only after ``CONSENT_TIMEOUT`` seconds without any answer.
    """
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        if getattr(connection, "_parta_consent", False):
            continue

        async def query_consent(connection: Any = connection) -> None:
            loop = asyncio.get_running_loop()
            last_answer = loop.time()
            while True:
                await asyncio.sleep(aioice.ice.CONSENT_INTERVAL * (0.8 + 0.4 * random.random()))
                for pair in list(connection._nominated.values()):
                    request = connection.build_request(pair, nominate=False)
                    try:
                        await pair.protocol.request(
                            request,
                            pair.remote_addr,
                            integrity_key=connection.remote_password.encode("utf8"),
                            retransmissions=3,
                        )
                        last_answer = loop.time()
                    except aioice.stun.TransactionError:
                        pass
                if loop.time() - last_answer > CONSENT_TIMEOUT:
                    logger.info("ICE consent lost: no answer for %.0f s", CONSENT_TIMEOUT)
                    connection._query_consent_task = None
                    await connection.close()
                    return

        _patch(connection, query_consent=query_consent, _parta_consent=True)


def _patch(obj: object, **attributes: Any) -> None:
    for name, value in attributes.items():
        setattr(obj, name, value)
