"""The school's consents in the console (headless Chromium, a real Synapse with the
module), at a phone's width and by keyboard: the secretary picks class 5Б and sees its
pupils × the four purposes and the counts («без согласия на видеоуроки: 2»), opens a
pupil's «Записать согласие на бумаге», is refused in words without the form's number
(the module's message, the number field marked), records it with the number, and the
table and counts change; the pupil's consent is in force (the per-member read says paper
with that number, and their media token has the camera on). Esc cancels and sends
nothing. A teacher has no tab. Screenshots as in test_console.py
(``PARTA_CONSOLE_SHOTS``)."""

import json
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, Request, expect

from parta_common import tokens
from tests.browser import chromium
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import api
from tests.test_console import CONSOLE, school_with_admin, shot, sign_in

pytestmark = pytest.mark.browser

SECRET = "console-consents-secret-of-32-chars!"
MODULE_CONFIG = {
    "media": {"enabled": True, "token_secret": SECRET, "sfu_public_url": "http://127.0.0.1:9/"}
}


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("console-consents"), MODULE_CONFIG) as running:
        yield running


async def tab_to(page: Page, selector: str, tries: int = 120) -> None:
    """Press Tab until the element is focused (keyboard only)."""
    target = page.locator(selector)
    for _ in range(tries):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached by Tab")


def camera_on(synapse: RunningHomeserver, pupil: User, room_id: str) -> bool:
    quoted = urllib.parse.quote(room_id, safe="")
    answer = api(synapse, "POST", f"/rooms/{quoted}/media_token", pupil, {})
    claims = tokens.verify_media_token(answer["token"], SECRET, room_id=room_id)
    return bool(claims.grants.publish_camera)


async def unlabelled(page: Page) -> list[str]:
    found: list[str] = await page.evaluate(
        """[...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !(el.tagName === 'BUTTON' && el.textContent.trim()))
            .map(el => el.outerHTML)"""
    )
    return found


async def test_the_secretary_records_a_paper_consent_for_a_class_by_keyboard_on_a_phone(
    synapse: RunningHomeserver,
) -> None:
    admin, school = school_with_admin(synapse, "Школа № 31")
    sid = school["school_id"]
    path = f"/schools/{sid}"
    class_b = api(
        synapse, "POST", f"{path}/classes", admin, {"grade": 5, "letter": "Б", "year": "2026/27"}
    )
    class_a = api(
        synapse, "POST", f"{path}/classes", admin, {"grade": 5, "letter": "А", "year": "2026/27"}
    )
    names = ["Аня Белова", "Борис Волков", "Вера Горина"]
    pupils = [synapse.register("pupil", displayname=n) for n in names]
    for pupil in pupils:
        body = {"roles": ["student"], "classes": [class_b["class_id"]]}
        api(synapse, "PUT", f"{path}/members/{pupil.user_id}", admin, body)
    other = synapse.register("pupil-a", displayname="Гоша Другой")
    body = {"roles": ["student"], "classes": [class_a["class_id"]]}
    api(synapse, "PUT", f"{path}/members/{other.user_id}", admin, body)
    parent = synapse.register("mother", displayname="Мария Белова")
    body = {"roles": ["parent"], "children": [pupils[0].user_id]}
    api(synapse, "PUT", f"{path}/members/{parent.user_id}", admin, body)
    teacher = synapse.register("teacher", displayname="Игорь Учитель")
    body = {"roles": ["teacher"], "classes": [class_b["class_id"]]}
    api(synapse, "PUT", f"{path}/members/{teacher.user_id}", admin, body)
    # Before September: Аня's mother consented to video lessons in the bot; Борис's
    # parents withdrew photos on paper; Вера has nothing yet.
    consents = f"{path}/members/{{}}/consents"
    by_parent = {"consents": {"video_lessons": True}}
    api(synapse, "PUT", consents.format(pupils[0].user_id), parent, by_parent)
    on_paper = {"consents": {"photos": False}, "document_number": "№ 3/2026"}
    api(synapse, "PUT", consents.format(pupils[1].user_id), admin, on_paper)
    vera = pupils[2]
    class_chat = api(synapse, "GET", f"{path}/classes/{class_b['class_id']}", admin)["rooms"][
        "class_chat"
    ]
    assert not camera_on(synapse, vera, class_chat)

    puts: list[object] = []

    def record(request: Request) -> None:
        if request.method == "PUT" and request.url.endswith("/consents"):
            puts.append(json.loads(request.post_data or "null"))

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        page.on("request", record)
        await sign_in(page, synapse.base_url, admin)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#view-card h1")).to_be_visible()
        await tab_to(page, "#tab-consents")
        await expect(page.locator("#tab-consents")).to_have_text("Согласия")
        await page.keyboard.press("Enter")
        view = page.locator("#view-consents")
        await expect(view.locator("h1")).to_have_text("Согласия")

        # Class 5Б's pupils (the role chosen at first).
        await tab_to(page, "#consents-class")
        await page.locator("#consents-class").select_option(label="5Б")
        summary = page.locator("#consents-summary")
        await expect(summary).to_contain_text("5Б: 3 чел.")
        await expect(summary).to_contain_text("Видеоуроки — 2")
        await expect(summary).to_contain_text("Фото — 3")
        rows = page.locator("#consents-table tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.locator("th")).to_contain_text(names)  # by name
        video_counts = page.locator('#consents-counts tr[data-purpose="video_lessons"] td')
        await expect(video_counts).to_have_text(["1", "2", "0"])  # дано, не дано, отозвано
        photo_counts = page.locator('#consents-counts tr[data-purpose="photos"] td')
        await expect(photo_counts).to_have_text(["0", "2", "1"])

        def cell(pupil: User, purpose: str) -> str:
            return f'#consents-table tr[data-user="{pupil.user_id}"] td[data-purpose="{purpose}"]'

        await expect(page.locator(cell(pupils[0], "video_lessons"))).to_have_attribute(
            "data-state", "granted"
        )
        await expect(page.locator(cell(pupils[0], "video_lessons"))).to_contain_text(
            "родитель в чате"
        )
        await expect(page.locator(cell(pupils[1], "photos"))).to_contain_text("отозвано")
        await expect(page.locator(cell(pupils[1], "photos"))).to_contain_text("бумага № 3/2026")
        await expect(page.locator(cell(vera, "video_lessons"))).to_have_attribute(
            "data-state", "none"
        )
        await expect(page.locator(cell(vera, "video_lessons"))).to_contain_text("не дано")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        assert await unlabelled(page) == []
        await shot(page, "consents")

        # Esc on the dialog changes nothing.
        await tab_to(page, f'#consents-table tr[data-user="{pupils[0].user_id}"] .b-paper')
        await page.keyboard.press("Enter")
        await expect(page.locator("#paper-dialog")).to_be_visible()
        await page.keyboard.press("Escape")
        await expect(page.locator("#paper-dialog")).to_have_count(0)
        assert puts == []

        # Вера's paper form: video lessons given — first without the number.
        button = f'#consents-table tr[data-user="{vera.user_id}"] .b-paper'
        await expect(page.locator(button)).to_have_attribute(
            "aria-label", "Записать согласие на бумаге: Вера Горина"
        )
        await tab_to(page, button)
        await page.keyboard.press("Enter")
        dialog = page.locator("#paper-dialog")
        await expect(dialog.locator("h2")).to_have_text("Согласие на бумаге: Вера Горина")
        await tab_to(page, "#paper-video_lessons-keep")
        await page.keyboard.press("ArrowDown")
        assert await page.locator("#paper-video_lessons-grant").is_checked()
        assert await unlabelled(page) == []
        await tab_to(page, "#b-paper-save")
        await page.keyboard.press("Enter")
        error = page.locator("#paper-error")
        await expect(error).to_contain_text("Согласие на бумаге записывается с номером документа")
        number = page.locator("#paper-number")
        await expect(number).to_be_focused()
        await expect(number).to_have_attribute("aria-invalid", "true")
        assert puts == [{"consents": {"video_lessons": True}}]
        await shot(page, "consents-paper-refused", full_page=False)
        await page.keyboard.type("№ 21/2026")
        await page.keyboard.press("Enter")
        await expect(dialog).to_have_count(0)
        status = page.locator("#status")
        await expect(status).to_have_text("Согласие записано: Вера Горина")
        await expect(status).to_have_attribute("data-kind", "ok")
        assert puts[-1] == {"consents": {"video_lessons": True}, "document_number": "№ 21/2026"}

        # The table and the counts say so.
        await expect(page.locator(cell(vera, "video_lessons"))).to_contain_text("бумага № 21/2026")
        await expect(page.locator(cell(vera, "video_lessons"))).to_have_attribute(
            "data-state", "granted"
        )
        await expect(video_counts).to_have_text(["2", "1", "0"])
        await expect(summary).to_contain_text("Видеоуроки — 1")
        await expect(page.locator(button)).to_be_focused()
        await shot(page, "consents-recorded")

        # In force: the per-member read, and Вера's camera in a lesson.
        one = api(synapse, "GET", consents.format(vera.user_id), admin)["consents"]
        video = one["video_lessons"]
        assert video["granted"] and video["via"] == "paper"
        assert video["document_number"] == "№ 21/2026" and video["recorded_by"] == admin.user_id
        assert camera_on(synapse, vera, class_chat)

        # In English: the same page.
        await page.click("#lang")
        await expect(page.locator("#view-consents h1")).to_have_text("Consents")
        await expect(page.locator(cell(vera, "video_lessons"))).to_contain_text("paper № 21/2026")
        await page.click("#lang")

        # A teacher of the class: no tab.
        await page.click("#logout")
        await sign_in(page, synapse.base_url, teacher)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#tab-card")).to_be_visible()
        await expect(page.locator("#tab-consents")).to_have_count(0)
