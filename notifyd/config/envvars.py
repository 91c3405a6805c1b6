"""``${VAR}`` and ``${VAR:-default}`` substitution in parsed config values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from notifyd.config.findings import Path
from notifyd.redaction import is_secret

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# What is left of "${" once the references are taken out, except a dollar before a template's
# {{ expression }} ("total: ${{ amount }}"), which is text.
_BROKEN = re.compile(r"\$\{(?!\{)")


@dataclass
class Substitution:
    """The outcome of substituting a whole config tree."""

    data: Any
    errors: list[tuple[Path, str]] = field(default_factory=list)
    # Values from the environment that are secret by ``notifyd.redaction``'s rule: hidden
    # in every message and log line.
    secrets: set[str] = field(default_factory=set)


def substitute(data: Any, environ: Mapping[str, str], *, plain_scalars: set[Path] = frozenset()) -> Substitution:
    """Replace references in every string scalar of ``data``.

    A plain (unquoted) scalar that is one reference alone is re-typed as YAML would
    type the substituted text, so ``port: ${SMTP_PORT}`` yields an integer.
    """
    result = Substitution(data=None)
    result.data = _walk(data, (), environ, plain_scalars, result)
    return result


def _walk(value: Any, path: Path, environ: Mapping[str, str], plain: set[Path], out: Substitution) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, path + (k,), environ, plain, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, path + (i,), environ, plain, out) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    return _substitute_scalar(value, path, environ, path in plain, out)


def _substitute_scalar(text: str, path: Path, environ: Mapping[str, str], plain: bool, out: Substitution) -> Any:
    if _BROKEN.search(_REFERENCE.sub("", text)):  # ${NOPE, ${}, ${1BAD}: a typo, once passed on as literal text
        out.errors.append((path, "'${' starts no reference: write ${NAME} or ${NAME:-default}, and $$ for a literal $"))
        return text
    failed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal failed
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in environ:
            value = environ[name]
        elif default is not None:
            value = default
        else:
            out.errors.append((path, f"environment variable {name} is not set and has no default"))
            failed = True
            return ""
        if "\n" in value or "\r" in value:
            out.errors.append((path, f"environment variable {name} holds a newline, which is refused"))
            failed = True
            return ""
        if name in environ and is_secret(_nearest_key(path), value):
            out.secrets.add(value)
        return value

    substituted = _REFERENCE.sub(replace, text)
    if failed:
        return text
    whole_reference = _REFERENCE.fullmatch(text) is not None and text != "$$"
    if plain and whole_reference:
        retyped = yaml.safe_load(substituted) if substituted else None
        if isinstance(retyped, (int, float, bool)) or retyped is None:
            return retyped if substituted else substituted
    return substituted



def _nearest_key(path: Path) -> object:
    """The mapping key a value sits under; list items count as under their list's key."""
    return next((part for part in reversed(path) if isinstance(part, str)), None)
