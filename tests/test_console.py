"""The console in headless Chromium against a real Synapse with the module: an
administrator signs in, imports the sample OneRoster school through the page (the plan
first, then the progress to 100 %), opens the printable codes, searches members; the
page at a phone's width; the main actions by keyboard alone. Screenshots of the main
pages go to a folder in the system's temporary directory (``parta-console-shots``), to
docs/console/ with ``PARTA_CONSOLE_SHOTS=docs`` (to refresh the docs' pictures on
purpose), to any other folder named there, and nowhere with ``PARTA_CONSOLE_SHOTS=0``."""

import base64
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from devtools.homeserver import HttpError
from tests.browser import chromium
from tests.data.make_sample_school import make_school, write_dir
from tests.harness import RunningHomeserver, User, running_homeserver
from tests.roster_helpers import api

pytestmark = pytest.mark.browser

CONSOLE = "/_synapse/client/parta/console/"
DOCS_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
# Deadlines for what the server does behind the page (not timing assertions).
IMPORT_DEADLINE_MS = 240_000


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """A Synapse with video lessons on, so the lessons page has lessons to list; the
    school-wide rooms joined at the first sign-in (``open_rooms_at_import`` off): nobody
    imported here signs in, and the joins behind its imports (some 600: 147 people)
    would share Synapse with the pages of the tests after it. The joins behind an
    import are tested in test_first_sign_in, test_bridge_roster and test_school_morning."""
    config = {
        "media": {
            "enabled": True,
            "token_secret": "console-test-secret-of-thirty-two-chars!",
            "sfu_public_url": "http://127.0.0.1:9/",
        },
        "open_rooms_at_import": False,
    }
    with running_homeserver(tmp_path_factory.mktemp("console"), module_config=config) as running:
        yield running


def png(width: int, height: int) -> bytes:
    """A small school logo: a blue square with a white bar (PNG, written by hand)."""
    rows = b"".join(
        b"\x00"
        + b"".join(
            b"\xff\xff\xff" if height // 3 < y < height // 2 else b"\x1f\x5f\xbf"
            for _x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def shot(page: Page, name: str, full_page: bool = True) -> None:
    where = os.environ.get("PARTA_CONSOLE_SHOTS", "")
    if where == "0":
        return
    if where == "docs":
        folder = DOCS_SHOTS
    elif where:
        folder = Path(where)
    else:
        folder = Path(tempfile.gettempdir()) / "parta-console-shots"
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


async def sign_in(page: Page, base_url: str, user: User) -> None:
    await page.goto(base_url + CONSOLE)
    await page.fill("#username", user.localpart)
    await page.fill("#password", user.password)
    await page.click("#b-signin")
    await expect(page.locator("#logout")).to_be_visible()


def school_with_admin(synapse: RunningHomeserver, name: str) -> tuple[User, dict[str, str]]:
    operator = synapse.register("op", admin=True)
    admin = synapse.register("director", displayname="Ольга Петровна Смирнова")
    school = api(
        synapse,
        "POST",
        "/schools",
        operator,
        {"name": name, "administrators": [admin.user_id], "address": "ул. Ленина, 1"},
    )
    return admin, school


async def test_an_administrator_imports_the_sample_school_and_prints_the_codes(
    synapse: RunningHomeserver, tmp_path: Path
) -> None:
    admin, school = school_with_admin(synapse, "Школа № 7 г. Энска")
    files = make_school(students=40, seed=11, prefix="con-", grades=range(5, 7))
    folder = write_dir(files, tmp_path / "oneroster")
    paths = sorted(str(p) for p in folder.iterdir() if p.suffix == ".csv")

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 1060})
        await page.goto(synapse.base_url + CONSOLE)
        await expect(page.locator("#signin h1")).to_have_text("Вход")
        await shot(page, "signin")
        await sign_in(page, synapse.base_url, admin)
        await page.click(f"text={school['name']}")
        await expect(page.locator("#view-card h1")).to_have_text("Карточка школы")
        await expect(page.locator("#card-form input[name=name]")).to_have_value(school["name"])
        # The logo goes to the media repository, its mxc:// into the school card.
        logo = tmp_path / "logo.png"
        logo.write_bytes(png(64, 64))
        await page.set_input_files("#view-card input[type=file]", str(logo))
        await expect(page.locator("img.logo")).to_be_visible()
        card = api(synapse, "GET", f"/schools/{school['school_id']}", admin)
        assert card["logo_mxc"].startswith("mxc://")
        await page.fill("#card-form input[name=phone]", "+7 812 000-00-07")
        await page.click("#b-save-card")
        await expect(page.locator("#status")).to_have_text("Карточка школы сохранена.")
        card = api(synapse, "GET", f"/schools/{school['school_id']}", admin)
        assert card["contacts"] == {"phone": "+7 812 000-00-07"}
        await shot(page, "card")

        # The import: files chosen in the page, the plan shown before anything changes.
        await page.click("#tab-import")
        await page.set_input_files("#import-files", paths)
        await page.click("#b-check")
        await expect(page.locator("#plan h2")).to_contain_text("План")
        counts = {
            key: int(await page.inner_text(f'#plan dd[data-count="{key}"]'))
            for key in ("create_classes", "create_accounts", "add", "remove")
        }
        assert counts["create_classes"] == 2
        assert counts["add"] == counts["create_accounts"] > 40  # pupils, parents, staff
        assert counts["remove"] == 0
        # Planning changed nothing yet.
        members = api(synapse, "GET", f"/schools/{school['school_id']}/members", admin)
        assert [m["user_id"] for m in members["members"]] == [admin.user_id]
        await shot(page, "import-plan")

        await page.click("#b-apply")
        await expect(page.locator("#progress-text")).to_contain_text(
            "100 %", timeout=IMPORT_DEADLINE_MS
        )
        await expect(page.locator("#import-progress")).to_have_attribute("aria-valuenow", "100")
        await expect(page.locator("#status")).to_have_text("Импорт завершён.")
        await shot(page, "import-done")
        members = api(synapse, "GET", f"/schools/{school['school_id']}/members", admin)
        assert len(members["members"]) == counts["add"] + 1
        classes = api(synapse, "GET", f"/schools/{school['school_id']}/classes", admin)
        assert sorted(c["title"] for c in classes["classes"]) == ["5А", "6А"]

        # The printable codes: one card a person, a print stylesheet with cards only.
        await page.click("#to-codes")
        await expect(page.locator("#cards .card").first).to_be_visible()
        students = sum(1 for m in members["members"] if "student" in m["roles"])
        await expect(page.locator("#cards .card")).to_have_count(students)
        code = await page.inner_text("#cards .card >> nth=0 >> .code")
        assert len(code) == 14 and code.count("-") == 2
        await page.select_option("#codes-class", "5А")
        fifth = await page.locator("#cards .card").count()
        assert 0 < fifth < students
        await shot(page, "codes")
        await page.emulate_media(media="print")
        assert not await page.is_visible("#nav")
        assert not await page.is_visible("#b-print")
        break_after = await page.eval_on_selector(
            "#cards .card", "el => getComputedStyle(el).breakAfter"
        )
        assert break_after == "page"
        await page.emulate_media(media="screen")
        await page.select_option("#codes-class", "")

        # Members by role and class, with search.
        await page.click("#tab-members")
        await expect(page.locator("#members tbody tr").first).to_be_visible()
        everyone = await page.locator("#members tbody tr").count()
        assert everyone == len(members["members"])
        await page.select_option("#filter-role", "student")
        await expect(page.locator("#members tbody tr")).to_have_count(students)
        first = (await page.inner_text("#members tbody tr >> nth=0 >> th")).split("\n")[0]
        surname = first.split()[0]
        await page.fill("#member-search", surname)
        rows = page.locator("#members tbody tr")
        await expect(rows.first).to_contain_text(surname)
        for text in await rows.all_inner_texts():
            assert surname.lower() in text.lower()
        assert await rows.count() < students
        await page.fill("#member-search", "")
        await page.select_option("#filter-role", "")
        await shot(page, "members", full_page=False)

        # Classes, invitations: the same API the bot uses.
        await page.click("#tab-classes")
        await expect(page.locator("#view-classes tbody tr")).to_have_count(2)
        await shot(page, "classes")
        await page.click("#tab-invites")
        await page.select_option("#invite-role", "teacher")
        await page.click("#invite-form button[type=submit]")
        await expect(page.locator("#invite-made .code")).to_be_visible()
        invite_code = await page.inner_text("#invite-made .code")
        invites = api(synapse, "GET", f"/schools/{school['school_id']}/invites", admin)
        assert invite_code in [i["code"] for i in invites["invites"]]
        await shot(page, "invites")

        # Lessons and attendance: a lesson of 5А, its attendance, the CSV.
        fifth_class = next(c for c in classes["classes"] if c["title"] == "5А")
        room = fifth_class["rooms"]["class_chat"]
        api(synapse, "POST", f"/rooms/{room}/lessons", admin, {"title": "Дроби"})
        await page.click("#tab-lessons")
        await page.select_option("#lessons-class", fifth_class["class_id"])
        await page.click("#lessons-list button:has-text('Дроби')")
        await expect(page.locator("#attendance tbody tr.absent")).to_have_count(fifth)
        async with page.expect_download() as waiting:
            await page.click("#b-attendance-csv")
        report = (await (await waiting.value).path()).read_bytes().decode("utf-8-sig")
        assert report.count("\n") >= fifth
        await shot(page, "lessons")

        # English on the switch; a refusal of the module in the page's language.
        await page.click("#tab-invites")
        await page.click("#lang")
        await expect(page.locator("#view-invites h1")).to_have_text("Invitations")
        await page.select_option("#invite-role", "parent")
        await page.click("#invite-form button[type=submit]")
        await expect(page.locator("#status")).to_have_attribute("data-kind", "error")
        assert "child" in (await page.inner_text("#status")).lower()
        await page.click("#lang")

        # Logout ends the session on the server too.
        token = await page.evaluate(
            "JSON.parse(sessionStorage.getItem('parta.console.session')).token"
        )
        await page.click("#logout")
        await expect(page.locator("#signin")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('parta.console.session')") is None
    with pytest.raises(HttpError) as gone:
        synapse.request("GET", "/_matrix/client/v3/account/whoami", None, token)
    assert gone.value.status == 401


async def test_the_console_at_a_phones_width_and_by_keyboard(
    synapse: RunningHomeserver,
) -> None:
    admin, school = school_with_admin(synapse, "Гимназия № 2")
    api(
        synapse,
        "POST",
        f"/schools/{school['school_id']}/classes",
        admin,
        {"grade": 9, "letter": "Б", "year": "2026/27"},
    )
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        await page.goto(synapse.base_url + CONSOLE)
        # Keyboard only: the page opens with the focus in the form.
        await expect(page.locator("#username")).to_be_focused()
        await page.keyboard.type(admin.localpart)
        await page.keyboard.press("Tab")
        await page.keyboard.type(admin.password)
        await page.keyboard.press("Enter")
        await expect(page.locator("#logout")).to_be_visible()
        link = page.locator(f"a:has-text('{school['name']}')")
        await link.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#view-card h1")).to_be_focused()
        # Tab from the top of the page to the members tab and open it.
        await page.locator("#tab-card").focus()
        for _ in range(10):
            if await page.evaluate("document.activeElement.id") == "tab-members":
                break
            await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "tab-members"
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # focus is visible
        await page.keyboard.press("Enter")
        await expect(page.locator("#view-members h1")).to_be_focused()
        await expect(page.locator("#members tbody tr")).to_have_count(1)
        # Nothing wider than the phone: tables scroll inside their own box.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360
        await shot(page, "phone-members")
        await page.locator("#tab-classes").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#view-classes tbody tr")).to_have_count(1)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        # Every form field has a label.
        unlabelled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == []
        await shot(page, "phone-classes")


def test_the_import_refuses_a_teacher_and_bad_files(
    synapse: RunningHomeserver,
) -> None:
    """The console's import route holds the roster's rules: only the school's managers;
    files with problems are refused with every «file:line», nothing written."""
    admin, school = school_with_admin(synapse, "Школа № 9")
    teacher = synapse.register("teacher")
    api(
        synapse,
        "PUT",
        f"/schools/{school['school_id']}/members/{teacher.user_id}",
        admin,
        {"roles": ["teacher"]},
    )
    files = make_school(students=10, seed=3, prefix="bad-", grades=range(1, 2))
    body = {"files": {k: base64.b64encode(v.encode()).decode() for k, v in files.items()}}
    with pytest.raises(HttpError) as refused:
        api(synapse, "POST", f"/schools/{school['school_id']}/imports", teacher, body)
    assert refused.value.status == 403
    broken = dict(body["files"])
    broken["users.csv"] = base64.b64encode(b"sourcedId,role\nx,student\n").decode()
    with pytest.raises(HttpError) as bad:
        api(synapse, "POST", f"/schools/{school['school_id']}/imports", admin, {"files": broken})
    assert bad.value.status == 400
    assert "users.csv:1" in bad.value.body["error"]
    assert bad.value.body["org.parta.message"]["id"] == "imports.files_rejected"
    # The same files planned twice and applied: the second plan is empty.
    planned = api(synapse, "POST", f"/schools/{school['school_id']}/imports", admin, body)
    assert planned["state"] == "planned" and not planned["plan"]["empty"]
    path = f"/schools/{school['school_id']}/imports/{planned['import_id']}"
    started = api(synapse, "POST", f"{path}/apply", admin, {})
    assert started["state"] in ("running", "done")
    with pytest.raises(HttpError) as twice:
        api(synapse, "POST", f"{path}/apply", admin, {})
    assert twice.value.status == 409
    deadline = time.monotonic() + IMPORT_DEADLINE_MS / 1000
    while (now := api(synapse, "GET", path, admin))["state"] == "running":
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    assert now["state"] == "done", now
    assert now["progress"]["percent"] == 100
    again = api(synapse, "POST", f"/schools/{school['school_id']}/imports", admin, body)
    assert again["plan"]["empty"], again["plan"]
    cards = api(synapse, "GET", f"{path}/sign_ins", admin)["sign_ins"]
    assert len(cards) == now["result"]["created_accounts"]
