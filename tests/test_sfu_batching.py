"""Batched sends (sfu.batching): how a queue splits into GSO runs, and that GSO and the
one-by-one fallback put the same datagrams on a real loopback socket."""

import socket

import pytest

from sfu.batching import MAX_RUN_BYTES, MAX_SEGMENTS, gso_available, gso_runs, send_datagrams


@pytest.mark.parametrize(
    ("lengths", "runs"),
    [
        ([], []),
        ([1200], [1]),
        ([1200, 1200, 1200], [3]),
        ([1200, 1200, 700], [3]),  # a shorter last segment ends the run
        ([1200, 700, 1200], [2, 1]),
        ([700, 1200, 1200], [1, 2]),  # a longer one cannot follow
        ([1200, 1199, 1199, 1199], [2, 2]),  # even split off by one byte: two runs
        ([100] * 70, [MAX_SEGMENTS, 6]),
        ([1400] * 50, [MAX_RUN_BYTES // 1400, 50 - MAX_RUN_BYTES // 1400]),
        ([200, 200, 90, 90, 90], [3, 2]),
    ],
)
def test_gso_runs(lengths: list[int], runs: list[int]) -> None:
    assert gso_runs(lengths) == runs
    assert sum(runs) == len(lengths)


def _received(gso: bool, datagrams: list[bytes]) -> list[bytes]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        buffer = memoryview(b"".join(datagrams))
        sent = send_datagrams(tx, rx.getsockname(), buffer, [len(d) for d in datagrams], gso)
        assert sent == len(datagrams)
        rx.settimeout(5)
        return [rx.recv(65536) for _ in datagrams]


def test_gso_and_one_by_one_deliver_the_same_datagrams() -> None:
    if not gso_available():
        pytest.skip("this kernel has no UDP GSO (the fallback is what runs here)")
    datagrams = [bytes([i]) * 1180 for i in range(70)] + [b"last" * 50]
    datagrams += [bytes([200 + i]) * 500 for i in range(3)] + [b"\x01" * 40]
    assert _received(True, datagrams) == datagrams
    assert _received(False, datagrams) == datagrams


def test_one_by_one_needs_no_gso() -> None:
    datagrams = [b"a" * 1000, b"b" * 1000, b"c" * 10]
    assert _received(False, datagrams) == datagrams
