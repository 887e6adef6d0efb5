"""A member's export and erasure in the console (headless Chromium, a real Synapse with
the module), at a phone's width and by keyboard: the administrator exports the seeded
student's data (the zip holds their messages and file, not a classmate's), then erases
them — the confirmation names the person and what goes, starts on the school's choice
for the messages, Esc cancels, the progress is
shown step by step until done — and the erased person cannot sign in. Screenshots go to
a temporary folder (``PARTA_CONSOLE_PRIVACY_SHOTS`` names another, e.g. docs/console)."""

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from devtools.homeserver import HttpError
from tests.browser import chromium
from tests.harness import RunningHomeserver, running_homeserver
from tests.privacy_people import MODULE_CONFIG, seed
from tests.roster_helpers import api
from tests.test_console import CONSOLE, sign_in

pytestmark = pytest.mark.browser

# What the server does behind the page (not timing assertions).
ERASURE_DEADLINE_MS = 180_000


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("console-privacy"), MODULE_CONFIG) as running:
        yield running


async def shot(page: Page, folder: Path, name: str) -> None:
    # Playwright makes the folder.
    await page.screenshot(path=str(folder / f"{name}.png"))  # the phone's screen


async def tab_to(page: Page, selector: str, tries: int = 150) -> None:
    """Press Tab until the element is focused (keyboard only)."""
    target = page.locator(selector)
    for _ in range(tries):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached by Tab")


async def test_an_administrator_exports_and_erases_a_member_by_keyboard_on_a_phone(
    synapse: RunningHomeserver, tmp_path: Path
) -> None:
    seeded = seed(synapse, made_by_parta=True)
    school, subject = seeded.school, seeded.subject
    folder = Path(os.environ.get("PARTA_CONSOLE_PRIVACY_SHOTS") or tmp_path / "shots")
    row = f'#members tr[data-user="{subject.user_id}"]'

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await sign_in(page, synapse.base_url, school.admin)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{school.school_id}/members")
        await expect(page.locator(row)).to_be_visible()
        name = (await page.inner_text(f"{row} th")).split("\n")[0].strip()
        export = page.locator(f"{row} button.b-export")
        erase = page.locator(f"{row} button.b-erase")
        await expect(export).to_have_attribute("aria-label", f"Выгрузить данные: {name}")
        await expect(erase).to_have_attribute("aria-label", f"Удалить все данные: {name}")

        # The export, by keyboard: the zip the API answers, offered for download.
        await page.locator("#member-search").focus()
        await tab_to(page, f"{row} button.b-export")
        async with page.expect_download() as waiting:
            await page.keyboard.press("Enter")
        download = await waiting.value
        assert download.suggested_filename.endswith(".zip")
        archive = zipfile.ZipFile(io.BytesIO((await download.path()).read_bytes()))
        names = set(archive.namelist())
        assert {"index.html", "data.json"} <= names
        assert {f"media/{m}" for m in seeded.media_ids} <= names
        assert archive.read(f"media/{seeded.media_ids[0]}") == seeded.file_bytes
        data = json.loads(archive.read("data.json"))
        text = json.dumps(data, ensure_ascii=False)
        assert subject.user_id in text
        bodies = [m["content"].get("body") for m in data["messages"]]
        assert set(seeded.messages) <= set(bodies)
        assert "Чужое сообщение одноклассника" not in text
        await expect(page.locator("#status")).to_contain_text("Архив данных готов")

        # The erasure: the confirmation names the person and what goes; Esc cancels.
        await erase.focus()
        await page.keyboard.press("Enter")
        dialog = page.locator("#erase-dialog")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("h2")).to_have_text(f"Удалить данные: {name}")
        await expect(dialog).to_contain_text(subject.user_id)
        await expect(dialog).to_contain_text("сообщения в комнатах школы")
        await expect(dialog).to_contain_text("учётная запись")
        assert await dialog.locator("input[value=redact]").is_checked()
        unlabelled = await dialog.evaluate(
            """d => [...d.querySelectorAll('input')].filter(el => !el.labels.length).length"""
        )
        assert unlabelled == 0
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await dialog.evaluate("d => { d.scrollTop = 0; }")  # the shot shows whom it names
        await shot(page, folder, "erase-confirm")
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        members = api(synapse, "GET", f"/schools/{school.school_id}/members", school.admin)
        assert subject.user_id in [m["user_id"] for m in members["members"]]

        # The school keeps erased people's messages (its policy): the dialog starts there.
        policy = {"erasure_messages": "keep_anonymised"}
        api(synapse, "PATCH", f"/schools/{school.school_id}", school.admin, {"policy": policy})
        await page.reload()
        await expect(page.locator(row)).to_be_visible()

        # Again, and this time confirmed: the box must be ticked first.
        await erase.focus()
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_visible()
        assert await dialog.locator("input[value=keep_anonymised]").is_checked()
        assert not await dialog.locator("input[value=redact]").is_checked()
        await tab_to(page, "#b-erase-confirm")
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_visible()  # not ticked: the form holds
        await tab_to(page, "#erase-sure")
        await page.keyboard.press("Space")
        await tab_to(page, "#b-erase-confirm")
        await page.keyboard.press("Enter")
        await expect(dialog).to_have_count(0)

        progress = page.locator("#erasure")
        await expect(progress).to_have_attribute("aria-live", "polite")
        await expect(progress.locator("h2")).to_be_focused()
        await expect(progress).to_have_attribute("data-status", "done", timeout=ERASURE_DEADLINE_MS)
        for step in ("roster", "messages", "school_rows", "media", "module_rows", "account"):
            await expect(progress.locator(f'li[data-step="{step}"]')).to_have_attribute(
                "data-state", "done"
            )
        await expect(page.locator("#erasure-state")).to_have_text(
            f"Данные удалены: {name}. Учётная запись удалена."
        )
        await expect(page.locator("#status")).to_have_attribute("data-kind", "ok")
        await expect(page.locator(row)).to_have_count(0)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        await shot(page, folder, "erase-done")
        # Every field has a label, the progress and the buttons a name.
        unlabelled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == []

        # In English: the same page, the buttons in English.
        await page.click("#lang")
        await expect(page.locator("#view-members h1")).to_have_text("Members")
        first = page.locator("#members tbody tr button.b-erase").first
        assert (await first.inner_text()) == "Erase data"
        await page.click("#lang")

    # The erasure kept the messages, as the dialog said.
    entries = api(synapse, "GET", f"/schools/{school.school_id}/audit", school.admin)["entries"]
    asked = [e for e in entries if e["action"] == "privacy.erase"]
    assert [e["details"]["messages"] for e in asked] == ["keep_anonymised"]
    # The API says done, the account is gone.
    with pytest.raises(HttpError):
        synapse.request(
            "POST",
            "/_matrix/client/v3/login",
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": subject.localpart},
                "password": subject.password,
            },
        )
