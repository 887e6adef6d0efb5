"""The coordinators' chain in the console (headless Chromium, a real Synapse with the
module): the operator makes a region and names its coordinator; she makes a
municipality and names its coordinator; he makes a school with its administrator and
downloads the municipality's statistics file — every step a page, every step the API."""

import io
from pathlib import Path
from urllib.parse import quote

import openpyxl
import pytest
from playwright.async_api import Page, expect

from devtools.homeserver import HttpError
from tests.browser import chromium
from tests.harness import RunningHomeserver, User
from tests.roster_helpers import api
from tests.test_console import shot, sign_in
from tests.test_first_sign_in import sign_in as code_sign_in
from tests.test_statistics import wait_for

pytestmark = pytest.mark.browser

# A deadline for what the server does behind a click (making a unit's or a school's
# rooms takes seconds on a loaded machine); not a timing assertion.
SERVER_MS = 90_000


async def sign_out(page: Page) -> None:
    await page.click("#logout")
    await expect(page.locator("#signin")).to_be_visible(timeout=SERVER_MS)


async def open_unit(page: Page, name: str) -> None:
    await page.goto(page.url.split("#")[0] + "#/")
    await page.click(f"#units a:has-text('{name}')")
    await expect(page.locator("#view-people h1")).to_contain_text(name, timeout=SERVER_MS)


async def test_the_coordinators_chain_and_the_statistics_file(
    synapse: RunningHomeserver, tmp_path: Path
) -> None:
    operator = synapse.register("op", admin=True)
    regional = synapse.register("regional", displayname="Анна Региональная")
    municipal = synapse.register("municipal", displayname="Борис Муниципальный")
    director: User = synapse.register("director", displayname="Вера Директор")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1060})

        # The operator: a region and its coordinator.
        await sign_in(page, synapse.base_url, operator)
        await page.fill("#region-name", "Энская область")
        await page.click("#region-form button[type=submit]")
        await expect(page.locator("#view-people h1")).to_contain_text(
            "Энская область", timeout=SERVER_MS
        )
        await page.fill("#coordinator", regional.user_id)
        await page.click("#coordinator-form button[type=submit]")
        await expect(page.locator("#coordinators")).to_contain_text(
            regional.user_id, timeout=SERVER_MS
        )
        await sign_out(page)

        # The regional coordinator: a municipality and its coordinator.
        await sign_in(page, synapse.base_url, regional)
        await open_unit(page, "Энская область")
        await page.fill("#municipality-name", "Энский район")
        await page.click("#municipality-form button[type=submit]")
        await page.click("#municipalities a:has-text('Энский район')", timeout=SERVER_MS)
        await expect(page.locator("#view-people h1")).to_contain_text(
            "Энский район", timeout=SERVER_MS
        )
        await page.fill("#coordinator", municipal.user_id)
        await page.click("#coordinator-form button[type=submit]")
        await expect(page.locator("#coordinators")).to_contain_text(
            municipal.user_id, timeout=SERVER_MS
        )
        await sign_out(page)

        # The municipal coordinator: a school with its administrator, then statistics.
        await sign_in(page, synapse.base_url, municipal)
        await open_unit(page, "Энский район")
        await page.fill("#school-name", "Школа № 1 пос. Энский")
        await page.fill("#school-admin", director.user_id)
        await page.click("#school-form button[type=submit]")
        # A school makes its rooms (seconds on a loaded machine); the page says it is
        # working and takes no second click meanwhile.
        await expect(page.locator("#unit-schools")).to_contain_text(
            "Школа № 1 пос. Энский", timeout=SERVER_MS
        )
        await expect(page.locator("#status")).to_have_text("Школа создана.")
        await shot(page, "units")
        schools = api(synapse, "GET", "/schools", director)["schools"]
        assert [s["name"] for s in schools] == ["Школа № 1 пос. Энский"]

        # A teacher who has signed in: her share is 100 %, as the API says it (a percent,
        # not a fraction the page would multiply again).
        school_id = schools[0]["school_id"]
        teacher = synapse.register("teacher-of-1", displayname="Галина Учитель")
        api(
            synapse,
            "PUT",
            f"/schools/{school_id}/members/{quote(teacher.user_id, safe='')}",
            director,
            {"roles": ["teacher"]},
        )
        api(synapse, "GET", "/me", teacher)  # she signs in: a request with her token
        unit_id = api(synapse, "GET", "/units", municipal)["units"][0]["unit_id"]

        def teacher_seen() -> bool:
            path = f"/units/{unit_id}/statistics"
            return bool(api(synapse, "GET", path, municipal)["totals"]["teachers_signed_in"] == 1)

        wait_for(teacher_seen, "the teacher's sign-in in the statistics")
        await page.click("#tab-statistics")
        await expect(page.locator("#stats-totals dd[data-figure=schools]")).to_have_text(
            "1", timeout=SERVER_MS
        )
        await expect(page.locator("#stats-totals dd[data-figure=teachers]")).to_have_text(
            "1 / 1 (100 %)"
        )
        await expect(page.locator("#stats-schools tbody td >> nth=1")).to_have_text("0 %")
        assert await page.locator("#stats svg.chart").count() >= 1
        await expect(page.locator("#stats-schools tbody tr")).to_have_count(1)
        # docs/console/statistics.png is written by devtools/walkthrough_console.py, over
        # days of activity; this district has none.
        async with page.expect_download(timeout=SERVER_MS) as waiting:
            await page.click("#b-xlsx")
        download = await waiting.value
        saved = tmp_path / "statistics.xlsx"
        await download.save_as(saved)
        book = openpyxl.load_workbook(io.BytesIO(saved.read_bytes()))
        assert book.sheetnames == ["Общая статистика", "Школы", "Трэк активности"]

        # A coordinator of the municipality cannot touch the region: the API refuses,
        # the page says so.
        units = api(synapse, "GET", "/units", municipal)["units"]
        assert [u["name"] for u in units] == ["Энский район"]


async def test_the_operator_appoints_a_coordinator_by_name_who_signs_in_with_the_card(
    synapse: RunningHomeserver,
) -> None:
    """Someone with no account yet: the operator names «Петрова Анна», the module makes her
    account, the page shows her printable card with the code, and she signs in with it and
    finds her region. In a school's members, a teacher is added by name the same way."""
    operator = synapse.register("op", admin=True)
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1060})
        await sign_in(page, synapse.base_url, operator)
        await page.fill("#region-name", "Заречная область")
        await page.click("#region-form button[type=submit]")
        await expect(page.locator("#view-people h1")).to_contain_text(
            "Заречная область", timeout=SERVER_MS
        )
        await page.fill("#coordinator", "Петрова Анна")
        await page.click("#coordinator-form button[type=submit]")
        card = page.locator("#new-card .card")
        await expect(card).to_be_visible(timeout=SERVER_MS)
        await expect(page.locator("#status")).to_have_text(
            "Учётная запись создана и назначена координатором: Петрова Анна. "
            "Код для входа — на карточке."
        )
        await expect(card.locator("h3")).to_have_text("Петрова Анна")
        await expect(card.locator(".card-school")).to_have_text("Заречная область")
        await expect(card).to_contain_text("Координатор региона")
        login = await card.locator("dd.mono >> nth=0").inner_text()
        code = await card.locator(".code").inner_text()
        assert login.startswith("@anna.petrova") and login.endswith(f":{synapse.server_name}")
        assert len(code) == 14 and code.count("-") == 2
        await expect(page.locator("#coordinators")).to_contain_text(login)
        await shot(page, "coordinator-card")
        # Printed, the page is the card alone (cut along its dashed border).
        await page.emulate_media(media="print")
        assert await card.is_visible()
        assert not await page.is_visible("#coordinators")
        assert not await page.is_visible("#coordinator-form")
        assert not await page.is_visible("#b-print-card")
        assert not await page.is_visible("#nav")
        await page.emulate_media(media="screen")
        # The code is shown once: the page reloaded shows no card.
        await page.reload()
        await expect(page.locator("#view-people h1")).to_contain_text(
            "Заречная область", timeout=SERVER_MS
        )
        assert await page.locator("#new-card").count() == 0
        # She lost the card: «Новый код входа» beside her makes a new code on a new card,
        # and the first code no longer signs in.
        label = f"Новый код входа для координатора {login}"
        await page.click(f'#coordinators button[aria-label="{label}"]')
        await expect(card).to_be_visible(timeout=SERVER_MS)
        await expect(page.locator("#status")).to_have_text(
            f"Новый код входа для {login} — на карточке; старый код больше не действует."
        )
        first_code, code = code, await card.locator(".code").inner_text()
        assert code != first_code and len(code) == 14
        await shot(page, "coordinator-new-code")
        with pytest.raises(HttpError) as old:
            code_sign_in(synapse, login, first_code)
        assert old.value.status == 403
        await sign_out(page)

        # She signs in with the login and the code from the card and sees her region.
        await page.fill("#username", login.removeprefix("@").split(":")[0])
        await page.fill("#password", code)
        await page.click("#b-signin")
        await expect(page.locator("#logout")).to_be_visible(timeout=SERVER_MS)
        await expect(page.locator("#who")).to_have_text(login)
        await expect(page.locator("#units")).to_contain_text("Заречная область", timeout=SERVER_MS)
        await open_unit(page, "Заречная область")
        await sign_out(page)

        # A school's members: a teacher with no account, added by name.
        school = api(synapse, "POST", "/schools", operator, {"name": "Школа № 3 г. Заречного"})
        await sign_in(page, synapse.base_url, operator)
        await page.goto(page.url.split("#")[0] + f"#/s/{school['school_id']}/members")
        await expect(page.locator("#view-members h1")).to_be_visible(timeout=SERVER_MS)
        await page.fill("#new-member", "Смирнов Олег Петрович")
        await page.select_option("#new-member-role", "teacher")
        await page.click("#member-form button[type=submit]")
        card = page.locator("#new-card .card")
        await expect(card).to_be_visible(timeout=SERVER_MS)
        await expect(card.locator("h3")).to_have_text("Смирнов Олег Петрович")
        await expect(card.locator(".card-school")).to_have_text("Школа № 3 г. Заречного")
        await expect(card).to_contain_text("учитель")
        teacher = await card.locator("dd.mono >> nth=0").inner_text()
        assert teacher.startswith("@oleg.smirnov")
        await expect(page.locator("#members")).to_contain_text("Смирнов Олег Петрович")
        await page.emulate_media(media="print")
        assert await card.is_visible()
        assert not await page.is_visible("#members")
        await page.emulate_media(media="screen")
        # A pupil is not made this way: the module's refusal, in the page's words.
        await page.fill("#new-member", "Козлов Ваня")
        await page.select_option("#new-member-role", "student")
        await page.click("#member-form button[type=submit]")
        await expect(page.locator("#status")).to_have_attribute("data-kind", "error")
        await expect(page.locator("#status")).to_contain_text("только администраторов и учителей")
    members = api(synapse, "GET", f"/schools/{school['school_id']}/members", operator)
    assert [m["display_name"] for m in members["members"]] == ["Смирнов Олег Петрович"]


async def test_a_new_schools_administrator_is_named_by_name_and_gets_a_card(
    synapse: RunningHomeserver,
) -> None:
    """The new-school form takes the administrator by name too: the school is made, then
    her account (as a school's members by name are), and her card with the code shows
    once; she signs in with it and is the school's administrator. A surname alone is
    refused by the page before anything is made."""
    operator = synapse.register("op", admin=True)
    region = api(synapse, "POST", "/units", operator, {"kind": "region", "name": "Озёрная область"})
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1200})
        await sign_in(page, synapse.base_url, operator)
        await open_unit(page, "Озёрная область")
        # Only a surname: refused in the page's words, no school made.
        await page.fill("#school-name", "Школа № 5 г. Озёрска")
        await page.fill("#school-admin", "Лебедева")
        await page.click("#school-form button[type=submit]")
        await expect(page.locator("#status")).to_have_attribute("data-kind", "error")
        await expect(page.locator("#status")).to_contain_text("фамилия и имя")
        assert api(synapse, "GET", f"/units/{region['unit_id']}", operator)["schools"] == []

        await page.fill("#school-admin", "Лебедева Ирина Сергеевна")
        await page.click("#school-form button[type=submit]")
        card = page.locator("#new-card .card")
        await expect(card).to_be_visible(timeout=SERVER_MS)
        await expect(page.locator("#status")).to_have_text(
            "Школа создана, учётная запись администратора создана: Лебедева Ирина Сергеевна."
            " Код для входа — на карточке."
        )
        await expect(page.locator("#unit-schools")).to_contain_text("Школа № 5 г. Озёрска")
        await expect(card.locator("h3")).to_have_text("Лебедева Ирина Сергеевна")
        await expect(card.locator(".card-school")).to_have_text("Школа № 5 г. Озёрска")
        await expect(card).to_contain_text("администратор")
        login = await card.locator("dd.mono >> nth=0").inner_text()
        code = await card.locator(".code").inner_text()
        assert login.startswith("@irina.lebedeva")
        await shot(page, "school-admin-card")
        # The code is shown once: the page reloaded shows no card.
        await page.reload()
        await expect(page.locator("#view-people h1")).to_contain_text(
            "Озёрная область", timeout=SERVER_MS
        )
        assert await page.locator("#new-card").count() == 0

    irina = code_sign_in(synapse, login, code)
    schools = api(synapse, "GET", "/schools", irina)["schools"]
    assert [s["name"] for s in schools] == ["Школа № 5 г. Озёрска"]
    members = api(synapse, "GET", f"/schools/{schools[0]['school_id']}/members", irina)
    assert [(m["user_id"], m["roles"]) for m in members["members"]] == [(login, ["administrator"])]
