"""MkDocs hooks: pages that show a Markdown file kept outside ``docs/``, and links that work in both.

``benchmarks/RESULTS.md`` (the current benchmark figures, next to the scripts that make them) and
``CONTRIBUTING.md`` (at the repository's root, where contributors look) are pages of the site too:
their stub pages under ``docs/`` are replaced by the file's text when the site is built. Every page's
relative links are written for the repository (they work when the Markdown is read in place); here
they are re-aimed at the site:

- a link to a file under ``docs/`` points to it from the page's place in the site;
- a link to a file shown by a stub page points to that page (``benchmarks/RESULTS.md#x`` to
  ``benchmarks/index.md#x``);
- a link to any other file of the repository (a script, the README) keeps its text without the link,
  since the site holds no copy of it; a link to a file that does not exist is left alone, so that
  strict mode reports it.

A page shows a Python example of another document with ``<!-- include-example: FILE NAME -->``
followed by a one-paragraph pointer for readers of the Markdown file: on the site the pointer is
replaced by the example marked ``<!-- example: NAME -->`` in ``FILE`` (the README's examples are
run by ``tests/test_docs_examples.py``, so the site shows tested code without a second copy).
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: site page (relative to docs/) -> repository file whose text it shows
INCLUDES = {
    "benchmarks/index.md": "benchmarks/RESULTS.md",
    "contributing.md": "CONTRIBUTING.md",
}
SHOWN_AT = {source: f"docs/{page}" for page, source in INCLUDES.items()}

INCLUDE_EXAMPLE = re.compile(r"^<!-- include-example: (?P<file>\S+) (?P<name>[\w-]+) -->\n(?:.+\n?)*", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)(?P<title>\s+\"[^\"]*\")?\)")


def _retarget(target: str, source: str, page: str) -> str | None:
    """``target``, a link written in the repository file ``source``, as seen from the site page
    ``page`` (both relative to the repository's root); None to drop the link but keep its text."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return target
    path, hash_, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
    resolved = SHOWN_AT.get(resolved, resolved)
    if not resolved.startswith("docs/"):
        return None if (ROOT / resolved).exists() else target
    return posixpath.relpath(resolved, posixpath.dirname(page)) + hash_ + anchor


def retarget_links(markdown: str, source: str, page: str) -> str:
    """Every relative link of ``markdown`` (the text of ``source``) re-aimed for ``page``."""

    def replace(match: re.Match) -> str:
        target = _retarget(match["target"], source, page)
        if target is None:
            return match["text"]
        return f"{match['bang']}[{match['text']}]({target}{match['title'] or ''})"

    out, fenced = [], False
    for line in markdown.split("\n"):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(replace, line))
    return "\n".join(out)


def example(document: str, name: str) -> str:
    """The Python block after ``<!-- example: NAME -->`` in the repository file ``document``."""
    text = (ROOT / document).read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)}\b[^>]*-->\s*```python\n(.*?)```", text, re.DOTALL)
    if match is None:
        raise ValueError(f"{document} has no example {name!r}")
    return match.group(1)


def include_examples(markdown: str) -> str:
    """``markdown`` with each ``include-example`` marker and its pointer replaced by the example."""
    return INCLUDE_EXAMPLE.sub(lambda m: f"```python\n{example(m['file'], m['name'])}```\n", markdown)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    uri = page.file.src_uri
    page_path = f"docs/{uri}"
    source = INCLUDES.get(uri)
    if source is not None:
        markdown = (ROOT / source).read_text(encoding="utf-8")
    return include_examples(retarget_links(markdown, source or page_path, page_path))
