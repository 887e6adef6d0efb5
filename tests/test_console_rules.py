"""The school's rules in the console (headless Chromium, a real Synapse with the module
whose operator allows only the ``staff_only`` and ``class`` DM rules), at a phone's width
and by keyboard: an administrator turns on quiet hours for teachers and enforces the
photos consent; the one PATCH carries only those two; GET /schools/{id} shows them; a
time the module does not take («25:00») is the module's refusal in the status line (in
words: «Неверное время … ЧЧ:ММ», not a regex) and
changes nothing. A teacher of the school sees no link to the page, nor does a
coordinator of another region who teaches there; the school's own region's coordinator
does (the module's ``may_manage``, the check its PATCH makes). Screenshots as in
test_console.py (``PARTA_CONSOLE_SHOTS``)."""

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.async_api import Page, Request, expect

from tests.browser import chromium
from tests.harness import RunningHomeserver, running_homeserver
from tests.roster_helpers import api, api_error
from tests.test_console import CONSOLE, school_with_admin, shot, sign_in

pytestmark = pytest.mark.browser

MODULE_CONFIG = {"policy": {"allowed_dm_policies": ["staff_only", "class"]}}


@pytest.fixture(scope="module")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    with running_homeserver(tmp_path_factory.mktemp("console-rules"), MODULE_CONFIG) as running:
        yield running


async def tab_to(page: Page, selector: str, tries: int = 80) -> None:
    """Press Tab until the element is focused (keyboard only)."""
    target = page.locator(selector)
    for _ in range(tries):
        if await target.evaluate("el => el === document.activeElement"):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached by Tab")


async def type_into(page: Page, selector: str, text: str) -> None:
    """Reach a field by Tab, select what is there and type over it."""
    await tab_to(page, selector)
    await page.keyboard.press("Control+A")
    await page.keyboard.type(text)


async def test_an_administrator_sets_the_school_rules_by_keyboard_on_a_phone(
    synapse: RunningHomeserver,
) -> None:
    admin, school = school_with_admin(synapse, "Школа № 12")
    sid = school["school_id"]
    teacher = synapse.register("rules-teacher")
    api(synapse, "PUT", f"/schools/{sid}/members/{teacher.user_id}", admin, {"roles": ["teacher"]})
    before = api(synapse, "GET", f"/schools/{sid}", admin)
    assert before["policy_limits"] == {
        "allowed_dm_policies": ["staff_only", "class"],
        "allow_student_group_chats": True,
    }
    patches: list[object] = []
    teachers = {"teacher": {"from": "21:30", "until": "08:00", "weekends": True}}
    changed = ("quiet_hours", "consent_enforced")

    def record(request: Request) -> None:
        if request.method == "PATCH" and request.url.endswith(f"/schools/{sid}"):
            patches.append(json.loads(request.post_data or "null"))

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 360, "height": 740})
        page.on("request", record)
        await sign_in(page, synapse.base_url, admin)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#view-card h1")).to_be_visible()
        # By keyboard from the school's page to its rules.
        await tab_to(page, "#tab-rules")
        await expect(page.locator("#tab-rules")).to_have_text("Правила школы")
        await page.keyboard.press("Enter")
        view = page.locator("#view-rules")
        await expect(view.locator("h1")).to_have_text("Правила школы")
        await expect(page.locator("#tab-rules")).to_have_attribute("aria-current", "page")
        # The school's rules as they are; only the DM rules the operator allows.
        assert await page.locator("#dm_policy-class").is_checked()
        assert await page.locator("input[name=dm_policy]").count() == 2
        assert not await page.locator("#qh-teacher-on").is_checked()
        assert await page.locator("#qh-teacher-from").is_disabled()
        assert await page.locator("#erasure_messages-redact").is_checked()
        await expect(page.locator("#self-consent-grade")).to_have_value("8")
        await expect(view).to_contain_text("ждут утра")

        # Quiet hours for teachers, 21:30 to 8:00 (typed so), weekends too; photos consent.
        await tab_to(page, "#qh-teacher-on")
        await page.keyboard.press("Space")
        assert await page.locator("#qh-teacher-from").is_enabled()
        await type_into(page, "#qh-teacher-from", "21:30")
        await type_into(page, "#qh-teacher-until", "8:00")
        await tab_to(page, "#qh-teacher-weekends")
        await expect(page.locator("#qh-teacher-until")).to_have_value("08:00")
        await page.keyboard.press("Space")
        await tab_to(page, "#consent-photos")
        await page.keyboard.press("Space")
        await tab_to(page, "#b-save-rules")
        await page.keyboard.press("Enter")
        status = page.locator("#status")
        await expect(status).to_have_text("Правила школы сохранены.")
        await expect(status).to_have_attribute("data-kind", "ok")
        # One PATCH with only what changed.
        assert patches == [
            {
                "policy": {
                    "quiet_hours": teachers,
                    "consent_enforced": ["photos"],
                }
            }
        ]
        policy = api(synapse, "GET", f"/schools/{sid}", admin)["policy"]
        assert policy["quiet_hours"] == teachers
        assert policy["consent_enforced"] == ["photos"]
        unchanged = {k: v for k, v in before["policy"].items() if k not in changed}
        assert {k: v for k, v in policy.items() if k not in changed} == unchanged
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        unlabelled = await page.evaluate(
            """[...document.querySelectorAll('input, select, textarea')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == []
        await shot(page, "rules")

        # Saving again with nothing changed sends nothing.
        await page.locator("#b-save-rules").focus()
        await page.keyboard.press("Enter")
        await expect(status).to_have_text("Ничего не изменено.")
        assert len(patches) == 1

        # A time the module does not take: its refusal, in the status line.
        await tab_to(page, "#qh-administrator-on")
        await page.keyboard.press("Space")
        await type_into(page, "#qh-administrator-from", "25:00")
        await tab_to(page, "#b-save-rules")
        await page.keyboard.press("Enter")
        await expect(status).to_have_attribute("data-kind", "error")
        await expect(status).to_contain_text("Неверное время")
        await expect(status).to_contain_text("quiet_hours/administrator/from")
        await expect(status).to_contain_text("«25:00»")
        await expect(status).to_contain_text("ЧЧ:ММ")
        # The field it names is marked and focused.
        wrong = page.locator("#qh-administrator-from")
        await expect(wrong).to_be_focused()
        await expect(wrong).to_have_attribute("aria-invalid", "true")
        assert patches[-1] == {
            "policy": {
                "quiet_hours": {
                    "administrator": {"from": "25:00", "until": "08:00", "weekends": False},
                    **teachers,
                }
            }
        }
        after = api(synapse, "GET", f"/schools/{sid}", admin)["policy"]
        assert after["quiet_hours"] == policy["quiet_hours"]
        await shot(page, "rules-refused", full_page=False)

        # In English: the same page.
        await page.click("#lang")
        await expect(page.locator("#view-rules h1")).to_have_text("School rules")
        await expect(page.locator("#view-rules")).to_contain_text("wait for the morning")
        await page.click("#lang")

        # A teacher of the school: no link to the rules.
        await page.click("#logout")
        await sign_in(page, synapse.base_url, teacher)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#tab-card")).to_be_visible()
        await expect(page.locator("#tab-rules")).to_have_count(0)


async def test_the_rules_tab_is_offered_to_those_the_module_lets_change_them(
    synapse: RunningHomeserver,
) -> None:
    operator = synapse.register("op", admin=True)
    near = synapse.register("near-coordinator")
    far = synapse.register("far-coordinator")
    admin = synapse.register("rules-director")
    region_of = {}
    for name, coordinator in (("Ближняя область", near), ("Дальняя область", far)):
        unit = api(synapse, "POST", "/units", operator, {"kind": "region", "name": name})
        who = quote(coordinator.user_id)
        api(synapse, "PUT", f"/units/{unit['unit_id']}/coordinators/{who}", operator)
        region_of[coordinator.user_id] = unit["unit_id"]
    school = api(
        synapse,
        "POST",
        "/schools",
        operator,
        {
            "name": "Школа № 7",
            "unit_id": region_of[near.user_id],
            "administrators": [admin.user_id],
        },
    )
    sid = school["school_id"]
    # The far region's coordinator also teaches here: they may open the school, not manage it.
    api(synapse, "PUT", f"/schools/{sid}/members/{far.user_id}", admin, {"roles": ["teacher"]})

    # The module says who manages the school, and refuses the rest the same way.
    manages = {
        who.localpart: api(synapse, "GET", f"/schools/{sid}", who)["may_manage"]
        for who in (operator, admin, near, far)
    }
    assert manages == {
        operator.localpart: True,
        admin.localpart: True,
        near.localpart: True,
        far.localpart: False,
    }
    change = {"policy": {"dm_policy": "staff_only"}}
    refused = api_error(synapse, "PATCH", f"/schools/{sid}", far, change)
    assert refused.status == 403
    assert refused.body["errcode"] == "M_FORBIDDEN"
    api(synapse, "PATCH", f"/schools/{sid}", near, change)
    assert api(synapse, "GET", f"/schools/{sid}", admin)["policy"]["dm_policy"] == "staff_only"

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1000, "height": 700})
        # The coordinator of the school's region: the link, and the page behind it.
        await sign_in(page, synapse.base_url, near)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#tab-rules")).to_have_text("Правила школы")
        await expect(page.locator("#card-form")).to_be_visible()
        await page.click("#tab-rules")
        await expect(page.locator("#view-rules h1")).to_have_text("Правила школы")
        assert await page.locator("#dm_policy-staff_only").is_checked()
        await shot(page, "rules-coordinator", full_page=False)

        # The other region's coordinator: no link, and the page's address opens the card.
        await page.click("#logout")
        await sign_in(page, synapse.base_url, far)
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/card")
        await expect(page.locator("#view-card h1")).to_be_visible()
        await expect(page.locator("#tab-card")).to_be_visible()
        await expect(page.locator("#tab-rules")).to_have_count(0)
        await page.click("#tab-classes")
        await expect(page.locator("#view-classes")).to_be_visible()
        await page.goto(f"{synapse.base_url}{CONSOLE}#/s/{sid}/rules")
        await expect(page.locator("#tab-card")).to_have_attribute("aria-current", "page")
        await expect(page.locator("#view-card h1")).to_be_visible()
        await expect(page.locator("#view-rules")).to_have_count(0)
        await expect(page.locator("#tab-rules")).to_have_count(0)
        # The card is shown as text, with who changes it: no form the module would refuse.
        await expect(page.locator("#card-form")).to_have_count(0)
        await expect(page.locator("#card-facts")).to_contain_text("Школа № 7")
        await expect(page.locator("#card-read-only")).to_contain_text("администраторы школы")
        await shot(page, "rules-other-region", full_page=False)
