"""A new person opens an invitation link in a browser, creates an account, and is in."""

import time

import pytest
from nio import AsyncClient, LoginResponse

from parta_common import catalogue
from parta_common.messages import Message
from tests.browser import chromium
from tests.harness import RunningHomeserver
from tests.roster_helpers import api

pytestmark = pytest.mark.browser


async def test_invitation_link_registers_a_student_in_chromium(synapse: RunningHomeserver) -> None:
    operator = synapse.register("op", admin=True)
    admin = synapse.register("admin")
    school = api(
        synapse,
        "POST",
        "/schools",
        operator,
        {"name": "Лицей № 3", "administrators": [admin.user_id]},
    )
    cls = api(
        synapse,
        "POST",
        f"/schools/{school['school_id']}/classes",
        admin,
        {"grade": 5, "letter": "В", "year": "2026/27"},
    )
    invite = api(
        synapse,
        "POST",
        f"/schools/{school['school_id']}/invites",
        admin,
        {"role": "student", "class_id": cls["class_id"]},
    )
    # The link names 127.0.0.1:<port> because the harness's public_baseurl does.
    assert invite["link"].startswith(synapse.base_url)
    username = f"pupil{int(time.time() * 1000)}"
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(invite["link"])
        await page.wait_for_selector("text=Лицей № 3")
        assert "5В" in await page.inner_text("#invite")
        await page.fill("#username", username)
        await page.fill("#display", "Петя Иванов")
        await page.fill("#password", "пароль-пети-1")
        await page.click("#b-register")
        await page.wait_for_selector("#done:not([hidden])")
        assert "Готово" in await page.inner_text("#done")
        # The same link once more: the code was for one person only. In English, the
        # page's texts and the refusal (by its id) come from the catalogue, nothing split.
        await page.goto(invite["link"] + "?lang=en")
        await page.wait_for_selector("#invite .error")
        refused = await page.inner_text("#invite")
        assert refused == Message("roster.invite_used_up").text("en")
        assert await page.inner_text("h1") == catalogue.text("join_page.title", "en")
        assert await page.inner_text("#b-login") == catalogue.text("join_page.login", "en")
        assert await page.title() == catalogue.text("join_page.page_title", "en")

    client = AsyncClient(synapse.base_url, f"@{username}:{synapse.server_name}")
    try:
        assert isinstance(await client.login("пароль-пети-1"), LoginResponse)
        rooms = await client.joined_rooms()
        assert cls["rooms"]["class_chat"] in rooms.rooms
    finally:
        await client.close()
