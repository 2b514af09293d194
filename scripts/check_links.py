"""Checks the documentation's internal links: every relative link in README.md, ARCHITECTURE.md and docs/src/*.md
names a file that exists, every `#anchor` a heading of that file (GitHub's and mdBook's slugs), and every page of
docs/src is listed in docs/src/SUMMARY.md. Exits non-zero naming each broken link.

    python scripts/check_links.py
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```", re.S)


def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(path):
    text = CODE.sub("", path.read_text())
    return {slug(m.group(2)) for m in re.finditer(r"^(#{1,6}) (.*)$", text, re.M)}


def main():
    pages = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs" / "src").glob("*.md"))]
    broken = []
    for page in pages:
        text = CODE.sub("", page.read_text())
        for m in LINK.finditer(text):
            target = m.group(2)
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: [{m.group(1)}]({target}): no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: [{m.group(1)}]({target}): no heading #{anchor}")
    summary = (ROOT / "docs" / "src" / "SUMMARY.md").read_text()
    listed = set(re.findall(r"\]\(([^)]+\.md)\)", summary))
    for p in sorted((ROOT / "docs" / "src").glob("*.md")):
        if p.name != "SUMMARY.md" and p.name not in listed:
            broken.append(f"docs/src/{p.name}: not listed in docs/src/SUMMARY.md")
    for b in broken:
        print(f"check_links: {b}")
    if broken:
        sys.exit(1)
    print(f"check_links: ok ({len(pages)} pages)")


if __name__ == "__main__":
    main()
