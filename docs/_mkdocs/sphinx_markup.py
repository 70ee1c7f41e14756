"""A griffe extension that shows the library's docstrings on the site as they read in ``help()``.

The docstrings follow TorchRL's convention: Google-style sections with Sphinx markup inside them
(``:class:`~maxent_components.soft_value.ExactSoftValue```, ``.. math::`` blocks, simple tables
between ``====`` rules, ``Example:`` before doctests). mkdocstrings reads the sections but renders
the text as Markdown, so before rendering this extension rewrites, in every docstring of the
package:

- a cross-reference role into an optional autoref to the object's API page (the name in code
  where the object is documented on no page, and always for objects outside the package);
- a ``.. math::`` directive into an arithmatex display block (``$$ ... $$``, typeset by MathJax);
- a simple table into a Markdown table (a list when it has no header row);
- ``Example:`` into ``Examples:`` and a paragraph's closing ``::`` into ``:`` (the indented block
  after it is a code block in Markdown too).

The source files are not changed.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|data|exc|obj):`(~?)([^`<]+?)`")
MATH = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<first>.*)$")
RULE = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")
EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$")
LITERAL = re.compile(r"(?<=\S)::[ \t]*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The full path of ``target`` as named in ``obj``'s docstring, or None outside the package."""
    if target.startswith("maxent_components"):
        return target
    head, _, rest = target.partition(".")
    scopes = [obj] if isinstance(obj, (griffe.Module, griffe.Class)) else []
    parent = obj.parent
    while parent is not None:
        scopes.append(parent)
        parent = parent.parent
    for scope in scopes:
        try:
            path = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError, ValueError):
            continue
        full = f"{path}.{rest}" if rest else path
        return full if full.startswith("maxent_components") else None
    return None


def _roles(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match) -> str:
        kind, short, target = match.groups()
        target = target.strip().removesuffix("()")
        title = target.rsplit(".", 1)[-1] if short else target
        if kind in ("func", "meth"):
            title += "()"
        identifier = _resolve(obj, target)
        if identifier is None:
            return f"`{title}`"
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    return ROLE.sub(replace, text)


def _math(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = MATH.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match["indent"])
        body = [match["first"]] if match["first"].strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
            if lines[i].strip():
                body.append(lines[i].strip())
            i += 1
        while i > 0 and not lines[i - 1].strip() and not MATH.match(lines[i - 1]):
            i -= 1  # the blank lines after the block stay in the text
        pad = " " * indent
        out.extend([f"{pad}$$", *(f"{pad}{line}" for line in body), f"{pad}$$"])
    return out


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    cells = []
    for k, (start, end) in enumerate(spans):
        stop = spans[k + 1][0] if k + 1 < len(spans) else len(line)
        cells.append(line[start:max(stop, end)].strip())
    return cells


def _tables(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not RULE.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        rule = lines[i]
        spans = [m.span() for m in re.finditer(r"=+", rule)]
        pad = " " * _indent(rule)
        rows: list[list[str]] = []
        header: list[str] | None = None
        i += 1
        while i < len(lines) and lines[i].strip():
            if RULE.match(lines[i]):
                if header is None and rows and i + 1 < len(lines) and lines[i + 1].strip():
                    header, rows = rows[0], []
                    i += 1
                    continue
                i += 1
                break
            rows.append(_cells(lines[i], spans))
            i += 1
        if header is None:
            out.extend(f"{pad}- {row[0]}: {' '.join(row[1:])}".rstrip(": ") for row in rows)
        else:
            out.append(f"{pad}| {' | '.join(header)} |")
            out.append(f"{pad}|{'---|' * len(header)}")
            out.extend(f"{pad}| {' | '.join(row)} |" for row in rows)
    return out


def markdown(obj: griffe.Object, text: str) -> str:
    """``text``, a docstring of ``obj``, with its Sphinx markup rewritten as Markdown."""
    lines = _tables(_math(text.splitlines()))
    lines = [EXAMPLE.sub(r"\1Examples:", line) for line in lines]
    lines = [line if line.lstrip().startswith(">>>") else LITERAL.sub(":", line) for line in lines]
    return _roles(obj, "\n".join(lines))


class SphinxMarkup(griffe.Extension):
    """Rewrite the Sphinx markup of every docstring of the loaded package as Markdown."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)
