"""Write one screenshot per dashboard page to docs/screenshots/ (1280×900 PNG).

    .venv/bin/python -m app.screenshots [--checkpoints checkpoints/demo] [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .browser import launch, serve, wait_rendered
from .paths import DEFAULT_ROOT

# (file name, url path + query, charts to wait for, pictures to wait for)
SHOTS = (
    ("overview.png", "", 2, 0),
    ("routing.png", "routing", 2, 0),
    ("experts.png", "experts", 4, 0),
    ("case_studies.png", "case-studies?user={user}", 2, 10),
    ("faithfulness.png", "faithfulness", 2, 0),
    ("compare.png", "compare", 3, 0),
    ("embedding.png", "embedding", 1, 5),
)


def take(checkpoints: Path, out: Path, ckpt: str | None = None, user: int = 3,
         width: int = 1280, height: int = 900, full_page: bool = False) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with serve(checkpoints) as url, sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            for name, path, charts, images in SHOTS:
                target = f"{url}/{path.format(user=user)}"
                if ckpt:
                    target += ("&" if "?" in target else "?") + f"ckpt={ckpt}"
                page.goto(target)
                wait_rendered(page, charts=charts, images=images)
                page.screenshot(path=str(out / name), full_page=full_page)
                written.append(out / name)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoints", type=Path, default=DEFAULT_ROOT / "demo")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    p.add_argument("--ckpt", help="checkpoint name relative to --checkpoints (default: the app's choice)")
    p.add_argument("--user", type=int, default=3)
    args = p.parse_args(argv)
    for path in take(args.checkpoints.resolve(), args.out, args.ckpt, args.user):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
