"""A channel's templates: subject, text body and HTML body rendered from a notification's data.

Templates come from the channel's ``templates`` mapping in the YAML and from the files of
its ``templates_dir``: ``<name>.subject.j2``, ``<name>.txt.j2`` (the body, required) and
``<name>.html.j2``. A template named in both places is taken from the YAML.

Rendering runs in Jinja2's immutable sandbox (notification data is untrusted input) with
``StrictUndefined``, so a missing variable fails instead of rendering an empty string.
HTML is autoescaped; subject and text are not.

Jinja2 is imported on first use: every channel process imports this module, most channels
have no templates, and Jinja2 costs a process ~4 MiB.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from notifyd.api import PermanentError

if TYPE_CHECKING:
    import jinja2

PARTS = ("subject", "body", "html")
FILE_SUFFIXES = {"subject": ".subject.j2", "body": ".txt.j2", "html": ".html.j2"}

# (where: a part name or a file name, message)
TemplateProblem = tuple[str, str]


@dataclass(frozen=True)
class Rendered:
    """The output of one template; ``subject`` and ``html`` are None when it has none."""

    subject: str | None
    body: str
    html: str | None


class Templates:
    """The templates of one channel, compiled on first use."""

    def __init__(self, sources: Mapping[str, Mapping[str, str]]) -> None:
        self._sources = sources
        self._environments: dict[bool, jinja2.Environment] = {}  # by autoescape, made on first use
        self._compiled: dict[tuple[str, str], jinja2.Template] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._sources

    def render(self, name: str, context: Mapping[str, Any]) -> Rendered:
        """Render template ``name``; raises ``PermanentError`` for any failure of this notification's."""
        source = self._sources.get(name)
        if source is None:
            known = ", ".join(sorted(self._sources)) or "none"
            raise PermanentError(f"template {name!r} does not exist (this channel has: {known})")
        output = {part: self._render_part(name, part, source, context) for part in PARTS if part in source}
        if "body" not in output:
            raise PermanentError(f"template {name!r} has no body")
        subject = output.get("subject")
        return Rendered(
            subject=" ".join(subject.split()) if subject is not None else None,
            body=output["body"],
            html=output.get("html"),
        )

    def _render_part(self, name: str, part: str, source: Mapping[str, str], context: Mapping[str, Any]) -> str:
        import jinja2

        try:
            return self._template(name, part, source[part]).render(context)
        except jinja2.UndefinedError as exc:
            raise PermanentError(f"template {name!r} ({part}): undefined variable: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise PermanentError(f"template {name!r} ({part}): refused by the sandbox: {exc}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise PermanentError(f"template {name!r} ({part}) line {exc.lineno}: {exc.message}") from None
        except Exception as exc:  # data is input: any failure it causes in a template is this notification's
            raise PermanentError(f"template {name!r} ({part}) failed: {type(exc).__name__}: {exc}") from None

    def _template(self, name: str, part: str, text: str) -> jinja2.Template:
        key = (name, part)
        if key not in self._compiled:
            self._compiled[key] = self._environment(autoescape=part == "html").from_string(text)
        return self._compiled[key]

    def _environment(self, *, autoescape: bool) -> jinja2.Environment:
        if autoescape not in self._environments:
            import jinja2
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            self._environments[autoescape] = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined,
                                                                          autoescape=autoescape)
        return self._environments[autoescape]


def load_sources(*, inline: Mapping[str, Mapping[str, str]], directory: str | None) -> dict[str, dict[str, str]]:
    """Template texts by name: those of ``directory`` overlaid by the inline ones.

    Raises ``OSError`` if ``directory`` cannot be read.
    """
    sources = _directory_sources(directory) if directory else {}
    sources.update({name: dict(parts) for name, parts in inline.items()})
    return sources


def _directory_sources(directory: str) -> dict[str, dict[str, str]]:
    sources: dict[str, dict[str, str]] = {}
    for file_name in sorted(os.listdir(directory)):
        for part, suffix in FILE_SUFFIXES.items():
            if file_name.endswith(suffix) and len(file_name) > len(suffix):
                with open(os.path.join(directory, file_name), encoding="utf-8") as file:
                    sources.setdefault(file_name[: -len(suffix)], {})[part] = file.read()
    return sources


def syntax_problems(parts: Mapping[str, str]) -> Iterator[TemplateProblem]:
    """Parts of one template that do not parse, as ``(part, message)``."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment()
    for part in PARTS:
        if part not in parts:
            continue
        try:
            environment.parse(parts[part])
        except jinja2.TemplateSyntaxError as exc:
            yield part, f"template syntax error on line {exc.lineno} of the template: {exc.message}"


def directory_problems(directory: str) -> Iterator[TemplateProblem]:
    """Files of ``directory`` that cannot be read or parsed, and templates without a body."""
    try:
        sources = _directory_sources(directory)
    except (OSError, UnicodeDecodeError) as exc:
        yield directory, f"cannot read templates from {directory!r}: {exc}"
        return
    for name, parts in sorted(sources.items()):
        if "body" not in parts:
            yield name, f"template {name!r} has no body file {name}{FILE_SUFFIXES['body']}"
        for part, message in syntax_problems(parts):
            yield f"{name}{FILE_SUFFIXES[part]}", message
