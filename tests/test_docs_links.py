"""Every relative link and image in README.md and docs/*.md points at a file that exists, and every
#anchor at a heading of the file it names (GitHub's anchor rules). Links inside code (fenced blocks and
`inline code`) are not links on GitHub, so they are skipped; so are http(s) and mailto addresses."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target), the target without spaces, optionally followed by a "title"
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line without its inline code) for the lines outside fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, INLINE_CODE.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (no markup) lowercased, everything but letters,
    digits, spaces, hyphens and underscores dropped, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def heading_anchors(page: Path) -> set[str]:
    """Every heading's anchor in ``page`` (inline code in a heading is part of its text); a repeated one
    gets -1, -2, ... as GitHub numbers them."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    return [(number, target) for number, line in prose_lines(page.read_text()) for target in LINK.findall(line)]


def broken(page: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / unquote(path)).resolve() if path else page
        where = f"{page.relative_to(root)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and unquote(anchor).lower() not in heading_anchors(dest):
            problems.append(f"{where}: no heading with that anchor in {dest.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_resolve(page):
    assert broken(page) == []


def test_the_readme_links_every_page_under_docs():
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    assert [p.name for p in PAGES[1:] if p.resolve() not in linked] == []


def test_the_checker_sees_what_github_does(tmp_path):
    page = tmp_path / "a.md"
    (tmp_path / "b.md").write_text("# Chains: `restore`\n\n## superres — ESPCN x4\n\n## Same\n\n## Same\n")
    page.write_text("[ok](b.md#chains-restore) [dash](b.md#superres--espcn-x4) [second](b.md#same-1)\n"
                    "![img](missing.png) [anchor](b.md#nope) `[code](nowhere.md)` [web](https://example.com/x)\n"
                    "```\n[fenced](nowhere.md)\n```\n[self](#nothing)\n")
    assert broken(page, tmp_path) == ["a.md:2: missing.png: no such file",
                                      "a.md:2: b.md#nope: no heading with that anchor in b.md",
                                      "a.md:6: #nothing: no heading with that anchor in a.md"]
