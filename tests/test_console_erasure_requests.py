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
