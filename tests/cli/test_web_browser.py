"""`krfeed demo --web` in a subprocess, its page in a real headless Chromium (Debian's
``chromium``, driven by Playwright for Python with ``executable_path``): live data within a few
seconds, a program-trading figure and an order's filled quantity equal to what the simulator
sent, switching the selected stock, and a screenshot kept as an artifact.

No browser here: the test says so loudly and skips (``.ci/run`` and ``make test`` install
Debian's chromium first). Set ``KRFEED_WEB_SCREENSHOT=path.png`` to also save the screenshot there.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from krfeed import KIS, Feed
from krfeed.records.kis import ProgramTrading

CHROMIUM = os.environ.get("KRFEED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _browser_or_skip() -> None:
    why = ""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        why = "the playwright package is not installed (pip install -e '.[dev]')"
    if not why and not os.access(CHROMIUM, os.X_OK):
        why = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if why:
        msg = f"BROWSER TEST NOT RUN: {why}"
        sys.stderr.write(f"\n{'!' * 72}\n{msg}\n{'!' * 72}\n")
        warnings.warn(msg, stacklevel=2)
        pytest.skip(msg)


@pytest.fixture
def demo() -> Iterator[tuple[str, str]]:
    """(dashboard URL, simulator URL) of a `krfeed demo --web --port 0` subprocess."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "krfeed", "demo", "--web", "--port", "0", "--duration", "240"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("krfeed web: http://"):
        proc.kill()
        raise AssertionError(
            f"unexpected first line {line!r}: {proc.stderr.read() if proc.stderr else ''}"
        )
    parts = line.split()
    url, sim = parts[2], parts[4]
    try:
        yield url, sim
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def sim_orders(sim: str, broker: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{sim}/_sim/orders?broker={broker}", timeout=5) as r:
        return {o["order_no"]: o for o in json.loads(r.read())}


async def _wait(page: Any, js: str, timeout: float = 30.0) -> Any:
    # a function, not an expression: Playwright evals expressions, which the page's CSP forbids
    return await page.wait_for_function(f"() => ({js})", timeout=timeout * 1000)


def test_dashboard_in_chromium(demo: tuple[str, str], tmp_path: Path) -> None:
    _browser_or_skip()
    url, sim = demo
    asyncio.run(_drive(url, sim, tmp_path))


async def _drive(url: str, sim: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    # An independent client of the same simulator: the program-trading totals it receives are
    # the ones the simulator sent (the market is one model, whoever subscribes).
    sent: dict[str, set[int]] = {}
    feed = Feed(KIS.sim(sim, 3))
    codes = ["005930", "000660"]

    def seen(r: ProgramTrading) -> None:
        if r.code and r.net_buy_qty is not None:
            sent.setdefault(r.code, set()).add(r.net_buy_qty)

    feed.on(KIS.PROGRAM_TRADING, seen)
    await feed.subscribe(KIS.PROGRAM_TRADING, codes)
    drain = asyncio.create_task(feed.run())
    errors: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 720})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            # the dark theme a trader keeps open all day (the page follows the system otherwise)
            await page.add_init_script("localStorage.setItem('krfeed.theme', 'dark')")
            t0 = time.monotonic()
            await page.goto(url)
            # live program-trading lines for five stocks, a tape and a ladder, healthy sessions
            await _wait(page, "document.querySelectorAll('#ranking tbody tr').length >= 5")
            await _wait(page, "document.querySelectorAll('#ladder tbody tr').length >= 20")
            await _wait(page, "document.querySelectorAll('#tape tbody tr').length >= 3")
            await _wait(page, "window.krfeed.chartDraws > 0")
            await _wait(
                page,
                "[...document.querySelectorAll('#sessions .pill')].filter("
                "p => p.dataset.state === 'live').length === 2",
            )
            first_view = time.monotonic() - t0
            series = await page.evaluate(
                "() => window.krfeed.charts().lines.series.slice(1).map(s => s.label)"
            )
            assert len(series) >= 5, series
            print(f"live page complete {first_view:.1f}s after opening it")

            # a program-trading figure on the page is one the simulator sent
            page_value = None
            for _ in range(100):
                cell = page.locator('#ranking tr[data-code="005930"] td.net-qty')
                page_value = int(await cell.get_attribute("data-value") or "0")
                if page_value in sent.get("005930", set()):
                    break
                await asyncio.sleep(0.2)
            assert page_value in sent["005930"], (page_value, sorted(sent.get("005930", ()))[-5:])

            # an order's filled quantity on the page is the simulator's
            await _wait(
                page,
                "[...document.querySelectorAll('#blotter tbody tr')].some("
                "r => r.querySelector('.st.filled'))",
                60,
            )
            row = page.locator("#blotter tbody tr:has(.st.filled)").first
            broker, order_no = (await row.get_attribute("data-order") or "").split(":")
            filled = int(await row.locator("td.filled").get_attribute("data-value") or "-1")
            order = sim_orders(sim, broker)[order_no]
            assert (order["filled"], order["remaining"]) == (filled, 0)
            assert filled == order["qty"] > 0

            # the tape moves
            top = await page.locator("#tape tbody tr").first.inner_text()
            await _wait(
                page,
                f"document.querySelector('#tape tbody tr').innerText !== {json.dumps(top)}",
            )

            # switch the selected stock: its name, tape and ladder follow
            await page.locator('#ranking tr[data-code="000660"]').click()
            await _wait(page, "document.getElementById('q-code').textContent === '000660'")
            await _wait(page, "document.querySelectorAll('#ladder tbody tr').length >= 20")
            assert await page.locator("#q-name").inner_text() == "SK하이닉스"
            best_ask = int(
                await page.locator("#ladder tr.ask.mid td.p").get_attribute("data-value") or "0"
            )
            best_bid = int(
                await page.locator("#ladder tr.bid td.p").first.get_attribute("data-value") or "0"
            )
            assert 100_000 < best_bid < best_ask < 300_000  # SK하이닉스's level, not 삼성전자's
            await _wait(
                page, "document.getElementById('bars-title').textContent.includes('000660')"
            )
            # English labels and the light theme, and back
            await page.locator("#lang").click()
            assert await page.locator("#panel-rank h2 span").first.inner_text() == (
                "Program net buying"
            )
            await page.locator("#lang").click()
            assert await page.locator("#panel-rank h2 span").first.inner_text() == (
                "프로그램 순매수 순위"
            )
            await page.locator("#theme").click()
            assert await page.evaluate("() => document.documentElement.dataset.theme") == "light"
            await page.locator("#theme").click()
            await asyncio.sleep(1.5)  # one more chart frame for the screenshot
            shot = tmp_path / "dashboard.png"
            await page.screenshot(path=str(shot))
            assert shot.stat().st_size > 20_000
            extra = os.environ.get("KRFEED_WEB_SCREENSHOT")
            if extra:
                shutil.copyfile(shot, extra)
            print(f"screenshot: {shot}")
            await browser.close()
    finally:
        drain.cancel()
        await feed.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Error" in e], errors
