"""Issue 26: the HTML report, opened in a real browser (headless Chromium through selenium):
no console errors, the charts drawn with the series' points, a firing's marker shows its
tooltip on hover, the fills table sorts, and the page needs no network.

Chromium and its driver are Debian's (`.ci/run` installs them); where neither can be found
outside CI the browser tests are skipped with one line saying so; in CI they never are.
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.metrics import report
from stratplan.render.html import render_html

# Twelve 8-hour rows; BTC rises through 70,000 twice, so the `when` trigger fires twice
# (it re-arms when the condition turns false in between).
PRICES = [67_800, 68_000, 70_500, 71_000, 69_000, 68_500, 70_200, 69_000, 68_000, 67_000,
          66_000, 65_000]
PLAN = """plan html_probe

holdings {
  wallet: 100_000 USDT, 1 ETH
}

phase entry {
  transfer 50_000 USDT from wallet to binance
  spot buy 0.3 BTC/USDT on binance
}

trigger take_profit when price(BTC) > 70_000 {
  spot sell 0.05 BTC/USDT on binance
}
"""


def _series_text() -> bytes:
    rows = ["time,price.BTC"]
    for i, price in enumerate(PRICES):
        rows.append(f"2024-01-0{1 + i * 8 // 24}T{(i * 8) % 24:02d}:00:00Z,{price}")
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    plan = parse(PLAN).plan
    assert plan is not None
    result = run_backtest(plan, default_market(), read_series(_series_text(), "s.csv"))
    data = report(result, steps=True)
    assert [e["time"] for e in data["events"] if e["kind"] == "firing"] == [
        "2024-01-01T16:00:00Z", "2024-01-03T00:00:00Z"]
    out = tmp_path_factory.mktemp("html") / "report.html"
    out.write_text(render_html(result, data, "probe.plan", PLAN), encoding="utf-8")
    return out, data


def test_the_page_is_self_contained_and_escapes_the_plan(page):
    path, _ = page
    text = path.read_text(encoding="utf-8")
    class Fetches(HTMLParser):
        """Every resource the page itself would fetch (script src, link href, img src)."""

        found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.found += [v or "" for k, v in attrs if k in ("src", "href")
                           and not (v or "").startswith("#")]

    fetches = Fetches()
    fetches.feed(text)
    assert fetches.found == []  # plotly.js is inlined: nothing to fetch when opened
    assert 'id="L13"' in text and "trigger take_profit when price(BTC) &gt; 70_000" in text
    assert '<span class="badge">2 firing(s)</span>' in text


def test_hostile_names_are_escaped(tmp_path):
    plan = parse(PLAN.replace("plan html_probe", 'plan probe "<script>alert(1)</script>"')).plan
    assert plan is not None
    result = run_backtest(plan, default_market(), read_series(_series_text(), "s.csv"))
    page = render_html(result, report(result), "<b>x</b>.plan", PLAN + "# </pre><script>x()")
    assert "<script>alert(1)" not in page and "</pre><script>x()" not in page
    assert "&lt;b&gt;x&lt;/b&gt;.plan" in page


def _chromium() -> tuple[str, str] | None:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (.ci/run does)")
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,2000",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    yield driver
    driver.quit()


def test_the_browser_draws_the_charts_with_no_console_error(page, browser):
    path, data = page
    browser.get(path.as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (r) { return r.name; });")
    assert fetched == []  # no network at view time
    traces = browser.execute_script("return document.getElementById('charts').data"
                                    ".map(function (t) { return [t.name, t.y.length]; });")
    by_name = dict(traces)
    assert by_name["value"] == data["steps"] == len(PRICES)
    assert by_name["firing"] == 2
    drawn = browser.execute_script(
        "return document.querySelectorAll('#charts .scatterlayer .trace path.js-line').length;")
    assert drawn >= 5  # value, drawdown, the PnL parts, exposure: SVG paths in the page
    values = browser.execute_script("return document.getElementById('charts').data[0].y;")
    assert values == [float(row["value"]) for row in data["step_list"]]  # every point drawn


def test_hovering_a_firing_shows_its_tooltip(page, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    path, _ = page
    browser.get(path.as_uri())
    markers = browser.find_elements(
        By.CSS_SELECTOR, "#charts .scatterlayer .trace .points path.point")
    names = browser.execute_script(
        "return document.getElementById('charts').data.map(function (t) { return t.name; });")
    # The firing trace's points are the triangles; hover the first one.
    firing = [m for m in markers if "rgb(42, 157, 143)" in (m.get_attribute("style") or "")]
    assert "firing" in names and firing
    ActionChains(browser).move_to_element(firing[0]).perform()
    tips = browser.find_elements(By.CSS_SELECTOR, "#charts .hoverlayer .hovertext")
    text = " ".join(t.text for t in tips)
    assert "take_profit" in text and "fired" in text


def test_the_fills_table_sorts(page, browser):
    from selenium.webdriver.common.by import By

    path, data = page
    browser.get(path.as_uri())
    table = browser.find_element(By.CSS_SELECTOR, "table.fills")
    header = next(th for th in table.find_elements(By.TAG_NAME, "th") if th.text == "amount")

    def amounts() -> list[Decimal]:
        return [Decimal(cell.find_element(By.CSS_SELECTOR, "[data-v]").get_attribute("data-v"))
                for cell in table.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(8)")]

    assert len(amounts()) == len(data["fills"]) >= 4
    header.click()
    assert amounts() == sorted(amounts())
    header.click()
    assert amounts() == sorted(amounts(), reverse=True)
