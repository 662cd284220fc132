"""The dashboard in a real browser: a streamlit server on 127.0.0.1 (free port, own process group,
stopped by PID) and headless Debian chromium through playwright. Screenshots go to
tests/artifacts/ (git-ignored); with MAGNET_SCREENSHOTS=1 they also go to docs/screenshots/."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from app.browser import CHROMIUM, launch, serve, wait_rendered

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"


def _need_chromium() -> None:
    if not Path(CHROMIUM).is_file():
        message = (f"{CHROMIUM} is missing: install Debian's chromium (`make browser`, or "
                   "`apt-get install -y chromium`); never `playwright install`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_pages_render_in_chromium(tiny_checkpoints):
    _need_chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    metrics = json.loads((tiny_checkpoints / "tiny/full/metrics.json").read_text())
    shots = []
    with serve(tiny_checkpoints, log=ARTIFACTS / "streamlit.log") as url, sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def visit(path: str, shot: str, charts: int, *expected: str, images: int = 0) -> str:
                """Open ``path``, wait for it, check it says ``expected``, keep a screenshot."""
                page.goto(f"{url}/{path}")
                wait_rendered(page, charts=charts, images=images)
                body = page.inner_text('[data-testid="stMain"]')
                for text in expected:
                    assert text in body, (path, text)
                assert "Traceback" not in body, path
                page.screenshot(path=str(ARTIFACTS / shot))
                shots.append(shot)
                return body

            visit("?ckpt=tiny/full", "overview.png", 2, "Overview · tiny/full", f"{metrics['test']['recall@20']:.4f}")
            visit("case-studies?ckpt=tiny/full&user=5", "case_studies.png", 2, "Case studies · tiny/full",
                  "Experts activated", "?ckpt=tiny/full&user=5", images=10)  # with the shareable link
            assert "user=5" in page.url
            visit("faithfulness?ckpt=tiny/full", "faithfulness.png", 2, "Faithfulness · tiny/full",
                  "Names the knockout that hurts most")
            visit("compare?ckpt=tiny/full", "compare.png", 3, "Compare checkpoints", "Download the compare table")

            page.goto(f"{url}/case-studies?ckpt=../../etc&user=77777")
            wait_rendered(page)
            body = page.inner_text('[data-testid="stMain"]')
            assert "outside the checkpoint root" in body and "does not exist" in body
            assert not errors, errors
        finally:
            browser.close()
    for name in shots:
        assert (ARTIFACTS / name).stat().st_size > 10_000
    if os.environ.get("MAGNET_SCREENSHOTS"):
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copy(ARTIFACTS / name, target / name)
