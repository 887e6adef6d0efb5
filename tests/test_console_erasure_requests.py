"""The school's queue of requests to erase in the console (headless Chromium, a real
Synapse with the module): open requests with their due dates, one overdue shown in red;
«Отклонить» asks for the reason the requester then reads; «Удалить» opens the existing
erasure dialog and the request is done when the erasure is. Screenshots go to a temporary
folder (``PARTA_CONSOLE_PRIVACY_SHOTS`` names another, e.g. docs/console)."""

import datetime
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from synapse_module.clock import CLOCK_FILE_VARIABLE
from synapse_module.privacy.rules import erasure_request_due
from tests.browser import chromium
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import School, api, build_school
from tests.test_console import CONSOLE, sign_in
from tests.test_console_privacy import ERASURE_DEADLINE_MS, shot

pytestmark = pytest.mark.browser

DAY = 86_400


class ModuleClock:
    """The module's time: a file of Unix seconds the test rewrites."""

    def __init__(self, path: Path):
        self.path = path

    def set(self, seconds: float) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(seconds), encoding="utf-8")
        tmp.replace(self.path)


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> ModuleClock:
    made = ModuleClock(tmp_path_factory.mktemp("clock") / "now")
    made.set(time.time())
    return made


@pytest.fixture(scope="module")
def synapse(
    tmp_path_factory: pytest.TempPathFactory, clock: ModuleClock
) -> Iterator[RunningHomeserver]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CLOCK_FILE_VARIABLE, str(clock.path))
        with running_homeserver(tmp_path_factory.mktemp("console-requests")) as running:
            yield running


def path(school: School, tail: str = "") -> str:
    return f"/schools/{school.school_id}/erasure_requests{tail}"


def file(synapse: RunningHomeserver, school: School, who: User, subject: User | None = None) -> Any:
    body = {} if subject is None else {"user_id": subject.user_id}
    return api(synapse, "POST", path(school), who, body)


async def test_the_school_answers_requests_to_erase_in_the_console(
    synapse: RunningHomeserver, clock: ModuleClock, tmp_path: Path
) -> None:
    school = build_school(synapse, synapse.register("operator", admin=True))
    name_path = f"/_matrix/client/v3/profile/{school.students[0].user_id}/displayname"
    synapse.request(
        "PUT", name_path, {"displayname": "Маша Иванова"}, token=school.students[0].access_token
    )
    # A request made a month ago (by the module's clock) is overdue today.
    clock.set(time.time() - 30 * DAY)
    late = file(synapse, school, school.other_teacher)
    clock.set(time.time())
    declined = file(synapse, school, school.teacher)
    carried = file(synapse, school, school.parent, school.students[0])
    today = datetime.date.fromisoformat(api(synapse, "GET", path(school), school.admin)["today"])
    assert carried["due_date"] == erasure_request_due(today).isoformat()
    folder = Path(os.environ.get("PARTA_CONSOLE_PRIVACY_SHOTS") or tmp_path / "shots")

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1100, "height": 700})
        await sign_in(page, synapse.base_url, school.admin)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{school.school_id}/privacy")
        table = page.locator("#requests")
        await expect(table.locator("tbody tr")).to_have_count(3)
        await expect(page.locator("#tab-privacy")).to_have_text("Конфиденциальность")
        await expect(page.locator("#requests-count")).to_have_text("Ждут ответа: 3 из 3.")
        # Open first, the oldest first: the overdue one leads, in red.
        first = table.locator("tbody tr").first
        await expect(first).to_have_attribute("data-request", late["request_id"])
        due = first.locator("td.due")
        await expect(due).to_have_class("due overdue")
        await expect(due).to_contain_text("просрочен")
        assert await due.evaluate("el => getComputedStyle(el).color") == "rgb(179, 38, 30)"
        row = table.locator(f'tr[data-request="{carried["request_id"]}"]')
        when = erasure_request_due(today).strftime("%d.%m.%Y")
        await expect(row.locator("td.due")).to_have_text(when)
        await expect(row.locator("td.due")).not_to_have_class("due overdue")
        await expect(row).to_contain_text("Маша Иванова")
        await expect(row).to_contain_text("родитель: ")
        await shot(page, folder, "erasure-requests")

        # Declined with a reason: the dialog holds without one; the requester reads it.
        refuse = table.locator(f'tr[data-request="{declined["request_id"]}"]')
        await refuse.locator("button.b-decline").click()
        dialog = page.locator("#decline-dialog")
        await expect(dialog).to_be_visible()
        await page.click("#b-decline-confirm")
        await expect(dialog).to_be_visible()  # the reason is required
        reason = "Школа обязана хранить классный журнал 5 лет."
        await page.fill("#decline-reason", reason)
        await shot(page, folder, "erasure-request-decline")
        await page.click("#b-decline-confirm")
        await expect(dialog).to_have_count(0)
        refuse = page.locator(f'#requests tr[data-request="{declined["request_id"]}"]')
        await expect(refuse).to_have_attribute("data-status", "declined")
        await expect(refuse).to_contain_text(reason)
        mine = api(synapse, "GET", path(school), school.teacher)["requests"]
        assert [(r["status"], r["reason"]) for r in mine] == [("declined", reason)]

        # Carried out: the erasure's own dialog, then its steps, then the request done.
        row = page.locator(f'#requests tr[data-request="{carried["request_id"]}"]')
        await expect(row.locator("button.b-carry-out")).to_have_attribute(
            "aria-label", "Удалить данные: Маша Иванова"
        )
        await row.locator("button.b-carry-out").click()
        erase = page.locator("#erase-dialog")
        await expect(erase.locator("h2")).to_have_text("Удалить данные: Маша Иванова")
        await expect(erase).to_contain_text(school.students[0].user_id)
        await page.check("#erase-sure")
        await page.click("#b-erase-confirm")
        progress = page.locator("#erasure")
        await expect(progress).to_have_attribute("data-status", "done", timeout=ERASURE_DEADLINE_MS)
        row = page.locator(f'#requests tr[data-request="{carried["request_id"]}"]')
        await expect(row).to_have_attribute("data-status", "done")
        await expect(row).to_contain_text("данные удалены")
        await expect(page.locator("#requests-count")).to_have_text("Ждут ответа: 1 из 3.")
        await page.set_viewport_size({"width": 1100, "height": 1000})
        await page.locator("#requests").scroll_into_view_if_needed()
        await shot(page, folder, "erasure-requests-answered")
        unlabelled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == []

    done = {
        r["request_id"]: r for r in api(synapse, "GET", path(school), school.parent)["requests"]
    }
    assert done[carried["request_id"]]["status"] == "done"
    assert done[carried["request_id"]]["erasure_id"]


# Whatever sticks out of the phone's screen sideways (the page itself never scrolls).
OUTSIDE = """(width) => [...document.querySelectorAll(
    '#view-privacy *, dialog[open], dialog[open] *')]
    .filter(el => el.getClientRects().length)
    .filter(el => { const r = el.getBoundingClientRect();
                    return r.left < -0.5 || r.right > width + 0.5; })
    .map(el => el.outerHTML.slice(0, 120))"""
# Buttons too small to hit with a thumb (WCAG 2.5.8: at least 24 × 24 px; we want 40 high).
SMALL_BUTTONS = """() => [...document.querySelectorAll('#requests button, dialog[open] button')]
    .filter(el => { const r = el.getBoundingClientRect(); return r.height < 40 || r.width < 44; })
    .map(el => { const r = el.getBoundingClientRect();
                 return `${el.textContent} ${r.width}x${r.height}`; })"""


async def test_the_queue_fits_a_phone_and_a_former_member_is_erased_there(
    synapse: RunningHomeserver, clock: ModuleClock, tmp_path: Path
) -> None:
    """At 360 px: each request a card — who, by whom, when, due (overdue in red), status
    with the reason — with its two buttons; nothing wider than the screen, buttons a
    thumb can hit; the decline and erase dialogs fit. A teacher who asked and then left
    the school is erased from their request (the school's part; the list says done)."""
    school = build_school(synapse, synapse.register("operator", admin=True), "Школа № 3")
    sid = school.school_id
    name_path = f"/_matrix/client/v3/profile/{school.students[0].user_id}/displayname"
    long_name = "Мария-Александра Константинопольская"
    synapse.request(
        "PUT", name_path, {"displayname": long_name}, token=school.students[0].access_token
    )
    clock.set(time.time() - 30 * DAY)
    late = file(synapse, school, school.other_teacher)
    clock.set(time.time())
    declined = file(synapse, school, school.teacher)
    reason = (
        "Школа обязана хранить классный журнал пять лет (приказ Минпросвещения России"
        " № 1/2026); данные будут удалены по истечении срока хранения."
    )
    api(synapse, "POST", path(school, f"/{declined['request_id']}/decline"), school.admin,
        {"reason": reason})  # fmt: skip
    guardian = file(synapse, school, school.parent, school.students[0])
    leaver = synapse.register("teacher-left")
    body = {"roles": ["teacher"], "classes": [school.class_a["class_id"]]}
    api(synapse, "PUT", f"/schools/{sid}/members/{leaver.user_id}", school.admin, body)
    former = file(synapse, school, leaver)
    api(synapse, "DELETE", f"/schools/{sid}/members/{leaver.user_id}", school.admin)
    folder = Path(os.environ.get("PARTA_CONSOLE_PRIVACY_SHOTS") or tmp_path / "shots")

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await sign_in(page, synapse.base_url, school.admin)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/privacy")
        table = page.locator("#requests")
        await expect(table.locator("tbody tr")).to_have_count(4)
        await expect(page.locator("#requests-count")).to_have_text("Ждут ответа: 3 из 4.")
        first = table.locator("tbody tr").first
        await expect(first).to_have_attribute("data-request", late["request_id"])
        await expect(first.locator("td.due")).to_contain_text("просрочен")
        row = table.locator(f'tr[data-request="{guardian["request_id"]}"]')
        await expect(row).to_contain_text(long_name)
        # Each cell says what it is: the column's heading is hidden on a phone.
        await expect(row.locator("td.due")).to_have_attribute("data-label", "Ответить до")
        refused = table.locator(f'tr[data-request="{declined["request_id"]}"]')
        await expect(refused).to_contain_text(reason)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await page.evaluate(OUTSIDE, 360) == []
        assert await page.evaluate(SMALL_BUTTONS) == []
        await page.evaluate("document.getElementById('requests-count').scrollIntoView()")
        await shot(page, folder, "phone-erasure-requests")
        await refused.scroll_into_view_if_needed()
        await shot(page, folder, "phone-erasure-requests-declined")

        # The decline dialog fits; Esc leaves it as it was.
        await row.locator("button.b-decline").click()
        await expect(page.locator("#decline-dialog")).to_be_visible()
        await page.fill("#decline-reason", "Обучается в школе; запрос подан не родителем.")
        assert await page.evaluate(OUTSIDE, 360) == []
        assert await page.evaluate(SMALL_BUTTONS) == []
        await shot(page, folder, "phone-erasure-request-decline")
        await page.keyboard.press("Escape")
        await expect(page.locator("#decline-dialog")).to_have_count(0)

        # The teacher who left: carried out from their request, on the phone.
        gone = table.locator(f'tr[data-request="{former["request_id"]}"]')
        await expect(gone).to_contain_text(leaver.user_id)
        await gone.locator("button.b-carry-out").click()
        erase = page.locator("#erase-dialog")
        await expect(erase).to_be_visible()
        await expect(erase).to_contain_text(leaver.user_id)
        # Off the roster already: the dialog does not say they will leave its rooms.
        await expect(erase).to_contain_text("в списке школы его уже нет")
        await expect(erase).not_to_contain_text("выйдет из всех комнат")
        assert await page.evaluate(OUTSIDE, 360) == []
        assert await page.evaluate(SMALL_BUTTONS) == []
        await shot(page, folder, "phone-erase-former-member")
        await page.check("#erase-sure")
        await page.click("#b-erase-confirm")
        progress = page.locator("#erasure")
        await expect(progress).to_have_attribute("data-status", "done", timeout=ERASURE_DEADLINE_MS)
        gone = page.locator(f'#requests tr[data-request="{former["request_id"]}"]')
        await expect(gone).to_have_attribute("data-status", "done")
        await expect(page.locator("#requests-count")).to_have_text("Ждут ответа: 2 из 4.")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await page.evaluate(OUTSIDE, 360) == []
        await progress.scroll_into_view_if_needed()
        await shot(page, folder, "phone-erasure-requests-answered")

    mine = api(synapse, "GET", path(school, ""), school.admin)["requests"]
    assert {r["request_id"]: r["status"] for r in mine}[former["request_id"]] == "done"
