"""Sending many datagrams to one address in few system calls (UDP GSO).

A subscriber's packets of one video frame leave the SFU back to back, to the same
address, all of one size but the last (packetizers split a frame evenly). Linux (4.18
and later) takes such a run in one ``sendmsg`` with a ``UDP_SEGMENT`` control message
and cuts it into datagrams itself; each datagram is what ``sendto`` would have sent.
Where the kernel refuses (no GSO, a route without checksum offload) datagrams go out
one by one, which is also what happens for a run of one.

:func:`gso_runs` decides how a queue of lengths splits into runs (pure, table-tested);
:func:`send_datagrams` sends a buffer of back-to-back datagrams that way.
"""

import errno
import functools
import socket
import struct
from collections.abc import Sequence
from typing import Any, Final

# linux/udp.h; Python's socket module names it from 3.12 on.
UDP_SEGMENT: Final = getattr(socket, "UDP_SEGMENT", 103)
# The kernel's UDP_MAX_SEGMENTS is 64 (128 on newer kernels); one call stays under 64 KiB.
MAX_SEGMENTS: Final = 64
MAX_RUN_BYTES: Final = 60_000
_SEGMENT_SIZE: Final = struct.Struct("=H")


@functools.cache
def gso_available() -> bool:
    """The kernel accepts ``UDP_SEGMENT`` on a UDP socket (checked once per process)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
    except OSError:
        return False
    return True


def gso_runs(lengths: Sequence[int]) -> list[int]:
    """How many datagrams of ``lengths`` each GSO call takes, in order.

    A run is datagrams of one length, optionally ended by one shorter datagram (the
    kernel's rule: every segment is ``gso_size`` bytes but the last), at most
    ``MAX_SEGMENTS`` datagrams and ``MAX_RUN_BYTES`` bytes.
    """
    runs: list[int] = []
    i, n = 0, len(lengths)
    while i < n:
        size = lengths[i]
        count, total = 1, size
        while i + count < n and count < MAX_SEGMENTS:
            following = lengths[i + count]
            if following > size or total + following > MAX_RUN_BYTES:
                break
            count += 1
            total += following
            if following < size:
                break
        runs.append(count)
        i += count
    return runs


def send_datagrams(
    sock: socket.socket, addr: Any, data: memoryview, lengths: Sequence[int], gso: bool
) -> int:
    """Send the datagrams lying back to back in ``data``; how many the kernel took.

    A full socket buffer (``BlockingIOError``) ends the batch: the rest are dropped, as
    a router would. With ``gso`` a run goes out in one ``sendmsg``; if the kernel
    refuses the segmentation (``OSError`` on the first run) the caller should retry
    with ``gso=False`` from the returned count (:class:`GsoRefused` says so). Other
    errors propagate.
    """
    sent = 0
    offset = 0
    if gso:
        for count in gso_runs(lengths):
            size = lengths[sent]
            total = size if count == 1 else sum(lengths[sent : sent + count])
            chunk = data[offset : offset + total]
            try:
                if count == 1:
                    sock.sendto(chunk, addr)
                else:
                    sock.sendmsg(
                        [chunk], [(socket.SOL_UDP, UDP_SEGMENT, _SEGMENT_SIZE.pack(size))], 0, addr
                    )
            except (BlockingIOError, InterruptedError):
                return sent
            except OSError as e:
                if count > 1 and e.errno in _GSO_REFUSALS:
                    raise GsoRefused(sent) from e
                raise
            sent += count
            offset += total
        return sent
    for size in lengths[sent:]:
        try:
            sock.sendto(data[offset : offset + size], addr)
        except (BlockingIOError, InterruptedError):
            return sent
        sent += 1
        offset += size
    return sent


# EINVAL: no GSO for this socket or size; EIO: the device cannot checksum a GSO packet;
# ENOPROTOOPT / EOPNOTSUPP: no UDP_SEGMENT at all.
_GSO_REFUSALS: Final = frozenset((errno.EINVAL, errno.EIO, errno.ENOPROTOOPT, errno.EOPNOTSUPP))


class GsoRefused(OSError):
    """The kernel refused a segmented send; ``sent`` datagrams had gone out before it."""

    def __init__(self, sent: int) -> None:
        super().__init__("UDP GSO refused")
        self.sent = sent
