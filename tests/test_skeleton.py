"""The homeserver of the harness really runs the module: API, login, enforcement."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from nio import LoginResponse, RoomCreateResponse, RoomPutStateError, RoomPutStateResponse

from devtools.homeserver import REPO_ROOT, HttpError
from parta_common import events
from synapse_module import __version__
from tests import openapi_check
from tests.harness import RunningHomeserver


def test_version_answers_without_auth(synapse: RunningHomeserver) -> None:
    body = synapse.request("GET", "/_synapse/client/parta/v1/version")
    assert body == {"name": "parta", "version": __version__}


def test_openapi_is_served_and_lists_version(synapse: RunningHomeserver) -> None:
    doc = synapse.request("GET", "/_synapse/client/parta/v1/openapi.json")
    assert doc["openapi"].startswith("3.")
    assert "/version" in doc["paths"]


def test_unknown_endpoint_is_a_matrix_404(synapse: RunningHomeserver) -> None:
    with pytest.raises(HttpError) as info:
        synapse.request("GET", "/_synapse/client/parta/v1/no-such-thing")
    assert info.value.status == 404
    assert info.value.body["errcode"] == "M_UNRECOGNIZED"
    assert "/ No such endpoint" in info.value.body["error"]


def test_wrong_method_is_405(synapse: RunningHomeserver) -> None:
    with pytest.raises(HttpError) as info:
        synapse.request("POST", "/_synapse/client/parta/v1/version", {})
    assert info.value.status == 405
    assert info.value.body["errcode"] == "M_UNRECOGNIZED"


async def test_a_matrix_client_logs_in_with_a_password(synapse: RunningHomeserver) -> None:
    from nio import AsyncClient

    user = synapse.register("login")
    client = AsyncClient(synapse.base_url, user.user_id)
    try:
        resp = await client.login(user.password, device_name="test")
        assert isinstance(resp, LoginResponse), resp
        assert client.user_id == user.user_id
    finally:
        await client.close()


async def test_module_refuses_structure_state_from_a_person(synapse: RunningHomeserver) -> None:
    """A person cannot forge the state that says a room is a school: 403 from the module."""
    user = synapse.register("forger")
    async with synapse.client(user) as client:
        created = await client.room_create(name="Моя комната")
        assert isinstance(created, RoomCreateResponse), created
        # Ordinary state passes the module.
        ok = await client.room_put_state(created.room_id, "m.room.topic", {"topic": "Тема"})
        assert isinstance(ok, RoomPutStateResponse), ok
        refused = await client.room_put_state(
            created.room_id, events.SCHOOL, {"name": "Фальшивая школа"}
        )
        assert isinstance(refused, RoomPutStateError), refused
        assert refused.status_code == "M_FORBIDDEN"
        assert "только сервис Parta" in refused.message
        assert "only the Parta service" in refused.message
        # Nothing was stored.
        state = await client.room_get_state(created.room_id)
        types = {e["type"] for e in state.events}
        assert events.SCHOOL not in types
        assert "m.room.topic" in types


async def test_module_refuses_structure_state_in_create_room(synapse: RunningHomeserver) -> None:
    """The same rule holds for initial_state in createRoom, a way around PUT /state."""
    user = synapse.register("forger")
    async with synapse.client(user) as client:
        resp = await client.room_create(
            initial_state=[{"type": events.CLASS, "state_key": "", "content": {"grade": 7}}]
        )
        assert not isinstance(resp, RoomCreateResponse)
        assert resp.status_code == "M_FORBIDDEN"


def test_openapi_documents_every_route(synapse: RunningHomeserver) -> None:
    """Docs stay true: every route the module serves is an operation of the OpenAPI
    document, with its success's body and the errors its handler answers."""
    served = synapse.request("GET", "/_synapse/client/parta/v1/openapi.json")
    doc = openapi_check.served_document()
    assert served == json.loads(json.dumps(doc))
    problems = openapi_check.route_problems(doc)
    assert not problems, "openapi.yaml:\n" + "\n".join(problems)
    for name in ("CreateSchool", "PutMember", "CreateInvite", "CreateLesson", "NewPoll"):
        assert served["components"]["schemas"][name]["type"] == "object"


def test_openapi_check_catches_a_wrong_answer() -> None:
    """The suite-wide check (conftest.py) fails on what the document does not describe."""
    doc = openapi_check.served_document()
    seen = [
        openapi_check.Seen("GET", "/version", 200, {"name": "parta", "version": "1"}),
        openapi_check.Seen("GET", "/version", 200, {"name": "other", "version": "1"}),
        openapi_check.Seen("GET", "/me", 418, {"errcode": "M_UNKNOWN", "error": "x"}),
        openapi_check.Seen("GET", "/schools/sch_1", 403, {"errcode": "M_NOT_JSON", "error": "x"}),
        openapi_check.Seen("GET", "/nowhere", 404, {"errcode": "M_UNRECOGNIZED", "error": "x"}),
        openapi_check.Seen("GET", "/nowhere", 200, {}),
    ]
    assert openapi_check.mismatches(doc, seen) == [
        "GET /me 418: status not documented",
        "GET /nowhere: no operation",
        "GET /schools/{school_id} 403: errcode: 'M_NOT_JSON' is not one of ['M_FORBIDDEN']",
        "GET /version 200: name: 'parta' was expected",
    ]


def test_make_run_refuses_a_port_already_taken(tmp_path: Path) -> None:
    """A second `make run` (or another server on its port) is told so, and starts nothing:
    otherwise the running one would answer this one's health checks."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "devtools.run"],
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "PARTA_VAR": str(tmp_path / "var"),
                "PARTA_SFU_PORT": str(port),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert out.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in out.stderr
    assert not (tmp_path / "var" / "synapse" / "homeserver.yaml").exists()
