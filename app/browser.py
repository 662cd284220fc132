"""Start the dashboard in its own process group and drive it in headless Debian chromium
(used by tests/app/test_browser.py and app/screenshots.py; never downloads a browser)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .paths import ENV_VAR, REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def serve(checkpoints: Path, port: int | None = None, timeout: float = 60.0,
          log: Path | None = None) -> Iterator[str]:
    """Run ``streamlit run app/main.py`` on 127.0.0.1:port; yield its base URL; stop it by PID."""
    port = port or free_port()
    if port_in_use(port):
        raise RuntimeError(f"port {port} is already in use (a stale server?)")
    env = {**os.environ, ENV_VAR: str(checkpoints), "PYTHONUNBUFFERED": "1"}
    out = open(log, "wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app" / "main.py"),
         "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with status {proc.returncode} before it was healthy")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit not healthy on {url} after {timeout:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the group we created: the server and its children
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if log:
            out.close()


def wait_rendered(page, charts: int = 0, images: int = 0, timeout_ms: int = 30_000) -> None:
    """Wait for the app to finish running the script and for charts and pictures to be drawn."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return app && app.getAttribute('data-test-script-state') !== 'running'
                          && !document.querySelector('[data-testid="stStatusWidget"]')
                          && document.querySelector('[data-testid="stMain"] h1'); }""", timeout=timeout_ms)
    if charts:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}",
                               timeout=timeout_ms)
    if images:
        page.wait_for_function(
            f"""() => {{ const imgs = [...document.querySelectorAll('[data-testid="stImage"] img')];
                        return imgs.length >= {images} && imgs.every(i => i.complete && i.naturalWidth > 0); }}""",
            timeout=timeout_ms)
    page.wait_for_timeout(400)  # let plotly finish its transitions


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
