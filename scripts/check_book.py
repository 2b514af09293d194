"""Builds the guide (docs/, mdBook) and checks the rendered output, not only the build: the job-file reference page
is drawn by a headless Chromium into a PNG, which must decode (Pillow) at the window's size and hold a page (many
colours, dark text on a light background); the built HTML must hold every page of docs/src/SUMMARY.md and every
section of the reference. Exits non-zero naming what is wrong.

    python scripts/check_book.py MDBOOK CHROMIUM
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 1600


def fail(msg):
    sys.exit(f"check_book: {msg}")


def main():
    mdbook, chromium = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "book"
        run = subprocess.run([mdbook, "build", str(ROOT / "docs"), "-d", str(out)], capture_output=True, text=True)
        if run.returncode != 0 or "ERROR" in run.stderr or "WARN" in run.stderr:
            fail(f"mdbook build: {run.stderr[-3000:]}")
        summary = (ROOT / "docs" / "src" / "SUMMARY.md").read_text()
        for page in re.findall(r"\]\(([^)]+)\.md\)", summary):
            if not (out / f"{page}.html").exists():
                fail(f"{page}.html was not built")
        html = (out / "reference-job-file.html").read_text()
        sections = re.findall(r"^## `\[([^\]]+)\]`", (ROOT / "docs" / "src" / "reference-job-file.md").read_text(), re.M)
        missing = [s for s in sections if f"[{s}]" not in html]
        if len(sections) < 10 or missing:
            fail(f"the reference page lacks sections {missing} (found {len(sections)} in the Markdown)")
        png = Path(tmp) / "reference.png"
        shot = subprocess.run([chromium, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}",
                               (out / "reference-job-file.html").as_uri()], capture_output=True, text=True, timeout=120)
        if shot.returncode != 0 or not png.exists():
            fail(f"chromium could not render the page: {shot.stderr[-2000:]}")
        img = Image.open(png)
        img.load()
        if img.size != (WIDTH, HEIGHT):
            fail(f"the screenshot is {img.size}, not {(WIDTH, HEIGHT)}")
        gray = img.convert("L")
        hist = gray.histogram()
        light = sum(hist[200:]) / (WIDTH * HEIGHT)
        dark = sum(hist[:80]) / (WIDTH * HEIGHT)
        colours = len(img.convert("RGB").getcolors(maxcolors=1 << 20) or [])
        if not (light > 0.5 and dark > 0.005 and colours > 50):
            fail(f"the rendered page looks empty: {light:.1%} light, {dark:.1%} dark pixels, {colours} colours")
        pages = len(re.findall(r"\]\(([^)]+)\.md\)", summary))
        print(f"check_book: ok ({pages} pages built; the reference page rendered {WIDTH}x{HEIGHT}: {light:.0%} "
              f"light, {dark:.1%} dark pixels, {colours} colours)")


if __name__ == "__main__":
    main()
