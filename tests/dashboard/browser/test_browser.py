"""The dashboard in a real Chromium: sign in, filter, read a timeline, export, run a drill."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.async_api import Browser, Page, expect
from pypdf import PdfReader

from tests.dashboard.browser.conftest import Served, keep_screenshot
from tests.dashboard.scenario import XSS, link_for


async def signed_in(
    browser: Browser, served: Served, member_id: int, dialogs: list[str] | None = None
) -> Page:
    """A page signed in through a link, as a coordinator or officer would; dialogs recorded."""
    context = await browser.new_context(accept_downloads=True, locale="en-CA")
    page = await context.new_page()
    if dialogs is not None:
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    link = await link_for(served.runtime, member_id, served.url)
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{served.url}/incidents")
    return page


async def test_sign_in_filter_and_read_an_incident(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    world = served.world
    dialogs: list[str] = []
    page = await signed_in(browser, served, world.coordinator.id, dialogs)
    await expect(page.locator("#total")).to_have_text("3 incident(s)")

    await page.select_option("select[name=school]", "nord")
    await page.select_option("select[name=kind]", "real")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#total")).to_have_text("1 incident(s)")
    await expect(page.get_by_role("link", name=world.nord)).to_be_visible()
    await expect(page.get_by_role("link", name=world.west)).to_have_count(0)

    await page.get_by_role("link", name=world.nord).click()
    await expect(page.get_by_role("heading", name=world.nord)).to_be_visible()
    timeline = page.locator("table.timeline")
    await expect(timeline).to_contain_text("2026-11-21 09:30:00")
    await expect(timeline).to_contain_text("Incident opened")
    await expect(timeline).to_contain_text("Alert acknowledged")
    await expect(page.locator("#alerts")).to_contain_text("Agent Roy, 2026-11-21 09:32:00")
    # Typed into the bot, shown as text: no script ran, the characters are on the page.
    await expect(page.locator("#transcript")).to_contain_text(XSS)
    assert await page.locator("#transcript script").count() == 0
    assert dialogs == []  # no alert() ever opened

    shot = tmp_path / "incident-page.png"
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    keep_screenshot(shot)

    await page.get_by_role("link", name="Français").click()
    await expect(page.get_by_role("heading", name="Chronologie")).to_be_visible()


async def test_exports_download(browser: Browser, served: Served, tmp_path: Path) -> None:
    world = served.world
    page = await signed_in(browser, served, world.officer_nord.id)
    async with page.expect_download() as listing:
        await page.get_by_role("link", name="Export as CSV").click()
    download = await listing.value
    assert re.fullmatch(r"sexto-incidents-\d{8}-\d{4}\.csv", download.suggested_filename)
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    codes = [row["code"] for row in csv.DictReader(io.StringIO(text))]
    assert codes == [world.drill, world.nord]  # the officer's school only

    await page.goto(f"{served.url}/incidents/{world.nord}")
    async with page.expect_download() as report:
        await page.get_by_role("link", name="PDF for the police file").click()
    pdf = await report.value
    assert pdf.suggested_filename == f"{world.nord}.pdf"
    content = Path(await pdf.path()).read_bytes()
    assert content.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Incident report SX-2026-0001" in text
    assert "EV-2026-777" in text

    await page.get_by_role("link", name="Printable report").click()
    await expect(page.get_by_role("heading", name=f"Incident report {world.nord}")).to_be_visible()
    await page.emulate_media(media="print")
    await expect(page.locator("header.top")).to_be_hidden()


async def test_a_drill_in_the_simulator_up_to_the_911_call(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    page = await signed_in(browser, served, served.world.coordinator.id)
    await page.get_by_role("link", name="Drill simulator").click()
    await page.get_by_role("button", name="Start a drill").click()
    chat = page.locator("#chat")
    await expect(chat).to_contain_text("DRILL: nothing is sent to the police.")
    for label in ("No immediate danger", "Understood", "Done"):
        await chat.get_by_role("button", name=label, exact=True).last.click()
    await page.get_by_role("textbox", name="Type").fill("2")
    await page.get_by_role("button", name="Send").click()
    await chat.get_by_role("button", name="Grid filled in").last.click()
    await expect(chat).to_contain_text("Call 911 now")

    await page.select_option("#forward select", "5")
    await page.locator("#forward button").click()
    await expect(chat).to_contain_text("Reminder 1")
    await expect(page.locator(".clock-bar")).to_contain_text("(5 min ahead)")
    await chat.get_by_role("button", name="I called 911").last.click()
    await expect(chat).to_contain_text("911 call recorded")
    shot = tmp_path / "drill-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    keep_screenshot(shot)


async def overflowing(page: Page) -> list[str]:
    """The elements reaching past the window's right edge (the page scrolls sideways)."""
    return list(
        await page.evaluate(
            """Array.from(document.querySelectorAll("body *"))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                .slice(0, 5).map(e => e.tagName.toLowerCase() + "." + e.className)"""
        )
    )


async def test_a_long_unbroken_message_wraps_instead_of_widening_the_page(
    browser: Browser, served: Served, tmp_path: Path
) -> None:
    """Pasted text without spaces (a link, a key, a mash of letters) stays inside its bubble,
    in the simulator and in the incident's conversation log."""
    page = await signed_in(browser, served, served.world.coordinator.id)
    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.get_by_role("link", name="Drill simulator").click()
    await page.get_by_role("button", name="Start a drill").click()
    chat = page.locator("#chat")
    await expect(chat).to_contain_text("DRILL: nothing is sent to the police.")
    pasted = "x" * 1500
    await page.get_by_role("textbox", name="Type").fill(pasted)
    await page.get_by_role("button", name="Send").click()
    await expect(chat).to_contain_text(pasted)
    assert await overflowing(page) == []
    box = await chat.bounding_box()
    officers = await page.locator(".officers").bounding_box()
    assert box is not None
    assert officers is not None
    assert box["x"] + box["width"] <= officers["x"]  # the officers' panel still beside it
    shot = tmp_path / "drill-long-text.png"
    await page.screenshot(path=str(shot))
    keep_screenshot(shot)

    code = re.search(r"SX-\d{4}-\d{4}", await chat.inner_text())
    assert code is not None
    await page.goto(f"{served.url}/incidents/{code.group(0)}")
    await expect(page.locator("#transcript")).to_contain_text(pasted)
    assert await overflowing(page) == []


async def test_a_refused_register_entry_is_shown_as_an_error(
    browser: Browser, served: Served
) -> None:
    page = await signed_in(browser, served, served.world.coordinator.id)
    await page.goto(f"{served.url}/confidentiality/new")
    await page.get_by_role("button", name="Save").click()
    summary = page.get_by_role("alert")
    await expect(summary).to_have_text("The entry was not saved: correct the fields marked.")
    # Red on pink, like the field errors: not the green of a confirmation.
    await expect(summary).to_have_css("color", "rgb(166, 27, 27)")
    await expect(summary).to_have_css("background-color", "rgb(251, 234, 234)")
    await expect(page.locator("#description")).to_have_attribute("aria-invalid", "true")
