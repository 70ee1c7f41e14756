"""The ``--help`` text of a recipe: every option with its value and documentation.

Schema options are documented by their :func:`~maxent_components.runs.config.option` help texts;
the options of a config group's chosen part by the ``Args`` / ``Keyword Args`` sections of the
docstring of the class it builds (one source of truth for each option).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from maxent_components.runs.config import _default_of

__all__ = ["argument_docs", "render_help"]

_SECTION = re.compile(r"^(Args|Arguments|Keyword Args|Keyword Arguments|Parameters):\s*$")
_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)(?:\s*\([^)]*\))?:\s*(.*)$")


def argument_docs(target: Any) -> dict[str, str]:
    """``{argument: description}`` from the ``Args:`` / ``Keyword Args:`` sections of a docstring
    (of ``target``, or the docstring itself when ``target`` is a string)."""
    doc = target if isinstance(target, str) else inspect.getdoc(target) or ""
    docs: dict[str, str] = {}
    in_section, current, indent = False, None, None
    for line in doc.splitlines():
        stripped = line.strip()
        if _SECTION.match(stripped) and not line.startswith(" "):
            in_section, current, indent = True, None, None
            continue
        if not in_section:
            continue
        if stripped and not line.startswith(" "):
            in_section = False
            continue
        width = len(line) - len(line.lstrip())
        match = _ENTRY.match(stripped)
        if match and (indent is None or width == indent):
            indent, current = width, [name.strip() for name in match.group(1).split(",")]
            for name in current:
                docs[name] = match.group(2)
        elif current is not None and stripped:
            for name in current:
                docs[name] += " " + stripped
    return {name: _plain_text(text) for name, text in docs.items()}


def _plain_text(text: str) -> str:
    """Docstring markup as plain text: ``:meth:`~a.b.loss``` → ``loss``, double backquotes dropped."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_format(v) for v in value) + "]"
    return str(value) if value != "" else "''"


def _rows(schema: type, cfg: DictConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for f in dataclasses.fields(schema):
        default = _default_of(f)
        if dataclasses.is_dataclass(default):
            rows += _rows(type(default), cfg, prefix + f.name + ".")
            continue
        if f.metadata.get("group"):
            continue
        text = f.metadata.get("help", "")
        if not text:
            raise ValueError(f"option {prefix + f.name} of {schema.__name__} has no help text; declare it with option().")
        if f.metadata.get("choices"):
            text += " One of: " + ", ".join(_format(c) for c in f.metadata["choices"]) + "."
        value = OmegaConf.select(cfg, prefix + f.name, default=default, throw_on_missing=False)
        value = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        rows.append((prefix + f.name, _format(value), text))
    return rows


def _fits(group: str, path: Path, fits: Callable[[str, type], bool] | None) -> bool:
    """Whether the group choice at ``path`` builds a class that ``fits`` the recipe (a choice whose
    class cannot be imported is listed: running it says why)."""
    if fits is None:
        return True
    target = (OmegaConf.load(path) or {}).get("_target_")
    cls = _describe(target) if isinstance(target, str) else None
    return cls is None or fits(group, cls)


def _group_rows(group: str, cfg: DictConfig, conf_dir: Path, docs: Mapping[str, str], fits) -> list[str]:
    node = OmegaConf.to_container(cfg[group], resolve=True) if group in cfg else {}
    target = node.get("_target_") if isinstance(node, dict) else None
    described = _describe(target) if target else None
    docs = {**docs, **(argument_docs(inspect.getdoc(described) or "") if described is not None else {})}
    choices = sorted(p.stem for p in (conf_dir / group).glob("*.yaml") if _fits(group, p, fits))
    lines = [f"  choices: {', '.join(choices)}" + (f"; this one builds {target}" if target else "")]
    shown: dict[str, str] = {}  # a docstring entry shared by several arguments is printed once
    for key, value in (node.items() if isinstance(node, dict) else []):
        if key.startswith("_") or isinstance(value, dict):
            continue
        text = docs.get(key, "")
        lines.append(_wrap(f"  {group}.{key}={_format(value)}", f"See {shown[text]}." if text in shown else text))
        if text and text not in shown:
            shown[text] = f"{group}.{key}"
    return lines


@functools.cache
def _describe(dotted: str) -> Any:
    """The class ``dotted`` names, or for a class of this package a stand-in read from its source (its
    docstring and the class attributes it and its bases assign: ``action_spaces``, ``has_log_prob``)
    so that ``--help`` does not load PyTorch; ``None`` if it cannot be found."""
    found = _from_source(dotted, depth=0)
    if found is not None:
        doc, attributes = found
        return type(dotted.rpartition(".")[2], (), {**attributes, "__doc__": doc})
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def _module_file(module: str) -> Path | None:
    """The source file of a module of this package, found without importing anything."""
    parts = module.split(".")
    if parts[0] != "maxent_components":
        return None
    base = Path(__file__).resolve().parents[1].joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _from_source(dotted: str, depth: int) -> tuple[str, dict[str, Any]] | None:
    """``(docstring, class attributes)`` of the class ``dotted`` from its module's source, following
    ``from ... import`` re-exports and the class's bases within this package."""
    module, _, name = dotted.rpartition(".")
    path = _module_file(module)
    if path is None or depth > 8:
        return None
    tree = _parsed(path)
    imported = {alias.asname or alias.name: f"{node.module}.{alias.name}" for node in tree.body
                if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            attributes: dict[str, Any] = {}
            for base in reversed(node.bases):  # the first base's attributes win, as in the MRO
                if isinstance(base, ast.Name) and base.id in imported:
                    inherited = _from_source(imported[base.id], depth + 1)
                elif isinstance(base, ast.Name):
                    inherited = _from_source(f"{module}.{base.id}", depth + 1)
                else:
                    inherited = None
                if inherited is not None:
                    attributes.update(inherited[1])
            for statement in node.body:
                targets = statement.targets if isinstance(statement, ast.Assign) else (
                    [statement.target] if isinstance(statement, ast.AnnAssign) and statement.value is not None else [])
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in _ATTRIBUTES:
                        try:
                            attributes[target.id] = ast.literal_eval(statement.value)
                        except ValueError:
                            pass
            return ast.get_docstring(node) or "", attributes
    if name in imported:
        return _from_source(imported[name], depth + 1)
    return None


#: the class attributes --help reads from the source
_ATTRIBUTES = ("action_spaces", "has_log_prob")


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _wrap(head: str, text: str, width: int = 100, column: int = 46) -> str:
    if not text:
        return head
    body = textwrap.wrap(text, width - column) or [""]
    if len(head) >= column - 1:
        return "\n".join([head] + [" " * column + chunk for chunk in body])
    return "\n".join([head.ljust(column) + body[0]] + [" " * column + chunk for chunk in body[1:]])


def render_help(
    name: str,
    description: str,
    schema: type,
    cfg: DictConfig,
    groups: Iterable[str],
    conf_dir: Path,
    group_docs: Mapping[str, Mapping[str, str]] | None = None,
    fits: Callable[[str, type], bool] | None = None,
) -> str:
    """The ``--help`` text of the composed ``cfg``: every option of the schema with its value and help,
    then every config group's choices (those whose class ``fits(group, cls)`` the recipe, when given)
    and the chosen part's options (documented by its class)."""
    group_docs = group_docs or {}
    lines = [name, "", textwrap.fill(description, 100), "", "Options (override as key=value):", ""]
    lines += [_wrap(f"  {key}={value}", text) for key, value, text in _rows(schema, cfg)]
    for group in groups:
        lines += ["", f"Config group {group} (choose with {group}=NAME; set an option with {group}.KEY=VALUE):"]
        lines += _group_rows(group, cfg, conf_dir, group_docs.get(group, {}), fits)
    groups = list(groups)
    sweep = "-m seed=0,1,2" + (" sampler=svgd,gaussian" if "sampler" in groups else "")
    lines += [
        "",
        textwrap.fill(
            f"Hydra: hydra.run.dir=PATH sets the run folder; -m runs a sweep ({sweep}) "
            "in hydra.sweep.dir, one sub-folder per cell named by its overrides; hydra/launcher=joblib|ray runs "
            "the cells in parallel; --cfg job prints the resolved config. A run is identified by its config: "
            "relaunching skips finished runs and resumes interrupted ones from their last checkpoint. "
            f"--help with overrides shows their effect (e.g. {'env=pendulum' if 'env' in groups else 'smoke=true'} --help).",
            100,
        ),
        "",
    ]
    return "\n".join(lines)
