"""report.html in real headless Chromium: charts render, nothing is fetched, a screenshot is kept.

Chromium and chromedriver are Debian packages that ``scripts/system-deps.sh`` installs; the
screenshot goes to ``test-artifacts/report.png`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from govern import dsr
from govern.audit.export import export_bundle
from govern.audit.sections import Controller
from govern.credentials import rotate
from govern.db import transaction
from govern.seeding import seed, seed_id
from tests.conftest import Databases
from tests.helpers import keyed_engine

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("GOVERNTEST_REQUIRE_POSTGRES") == "1":  # the full run: must be there
            pytest.fail("chromium and chromedriver are missing (scripts/system-deps.sh)")
        pytest.skip("chromium is not installed (run scripts/system-deps.sh as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="govern-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile}", "--window-size=1100,1400"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_its_charts(browser: Any, databases: Databases, tmp_path: Path) -> None:
    url = databases.migrated("sqlite")
    engine = keyed_engine(url)
    requests = []
    with transaction(engine) as session:
        seed(session, "demo")
        rotate(session, actor="ops")
        for kind, who in (("access", "alan"), ("erasure", "edsger")):
            out = dsr.submit(
                session,
                type=kind,
                identifiers={"subject_id": str(seed_id("core", "subjects", who))},
                calendar=dsr.WorkCalendar("UTC"),
                actor="portal",
                verified=True,
            )
            dsr.approve(session, out.request.id, actor="dpo")
            requests.append(out.request.id)
    for rid in requests:
        assert dsr.process_request(engine, rid, export_dir=tmp_path / "dsr").ok
    with transaction(engine) as session:
        export_bundle(
            session,
            tmp_path / "b.zip",
            signing_key=bytes(32),
            controller=Controller("Example Learning Ltd", "privacy@example.org", "dpo@example.org"),
        )
    engine.dispose()
    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        zf.extract("report.html", tmp_path)
    browser.get((tmp_path / "report.html").as_uri())
    charts = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.chart')).map(s => {"
        " const r = s.getBoundingClientRect();"
        " const bars = Array.from(s.querySelectorAll('rect.bar'))"
        "   .map(b => b.getBoundingClientRect().height);"
        " return {title: s.getAttribute('aria-label'), w: r.width, h: r.height, bars: bars}; })"
    )
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    title = browser.title
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1100, height)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    browser.save_screenshot(str(shot))
    assert title == "govern compliance report"
    # categories per domain, consents per week, DSR volume and on-time rate, audit actions
    assert len(charts) >= 5
    titles = [c["title"] for c in charts]
    assert "DSR volume per week" in titles
    assert "DSR on-time rate per week (completed requests)" in titles
    for chart in charts:
        assert chart["w"] > 100
        assert chart["h"] > 100
        assert chart["bars"]
        assert max(chart["bars"]) > 20  # a zero bar is a true zero; the tallest must show
        assert min(chart["bars"]) >= 0
    assert fetched == []
    assert shot.stat().st_size > 10_000
    # every capability is in this version: no section or chart is marked as missing
    assert browser.find_elements("css selector", "p.na") == []
