"""Two homeservers federating over loopback (TLS, self-signed): a school's rules hold for
events and invitations that arrive from another server."""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.homeserver import HttpError
from tests.harness import RunningHomeserver, free_port, running_homeserver
from tests.roster_helpers import School, build_school


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningHomeserver, RunningHomeserver]]:
    d = tmp_path_factory.mktemp("federation")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    tls = (cert, key)
    with (
        running_homeserver(Path(d / "school"), federation_port=free_port(), tls_files=tls) as a,
        running_homeserver(
            Path(d / "elsewhere"), federation_port=free_port(), tls_files=tls, load_module=False
        ) as b,
    ):
        yield a, b


@pytest.fixture(scope="module")
def school(servers: tuple[RunningHomeserver, RunningHomeserver]) -> School:
    a, _ = servers
    return build_school(a, a.register("op", admin=True))


def test_a_stranger_on_another_server_cannot_invite_a_student(
    servers: tuple[RunningHomeserver, RunningHomeserver], school: School
) -> None:
    _, b = servers
    stranger = b.register("stranger")
    room = b.request(
        "POST", "/_matrix/client/v3/createRoom", {"name": "Привет"}, stranger.access_token
    )
    invite = f"/_matrix/client/v3/rooms/{room['room_id']}/invite"
    with pytest.raises(HttpError) as info:
        b.request("POST", invite, {"user_id": school.students[0].user_id}, stranger.access_token)
    assert info.value.status == 403
    assert "Писать ученику" in info.value.body["error"]
    assert "A student can be written to" in info.value.body["error"]
    # Adults of the school are reachable from other servers as usual.
    b.request("POST", invite, {"user_id": school.teacher.user_id}, stranger.access_token)


def test_a_stranger_on_another_server_cannot_join_school_rooms(
    servers: tuple[RunningHomeserver, RunningHomeserver], school: School
) -> None:
    a, b = servers
    stranger = b.register("stranger")
    # The school-wide rooms are open (join rule public, #22), the class chat restricted.
    open_rooms = [school.rooms[k] for k in ("school_space", "announcements", "documents")]
    for room_id in (*open_rooms, school.class_a["rooms"]["class_chat"]):
        for action in ("join", "knock"):
            with pytest.raises(HttpError) as info:
                b.request(
                    "POST",
                    f"/_matrix/client/v3/{action}/{room_id}?server_name={a.server_name}",
                    {},
                    stranger.access_token,
                )
            assert info.value.status in (403, 404), (action, info.value.status)
    # And nothing of theirs reached the school's rooms.
    op = a.register("op2", admin=True)
    for room_id in open_rooms:
        members = a.request(
            "GET", f"/_synapse/admin/v1/rooms/{room_id}/members", token=op.access_token
        )["members"]
        assert stranger.user_id not in members
