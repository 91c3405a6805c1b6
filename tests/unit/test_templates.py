"""Templates: rendered in a sandbox, failures permanent, broken ones caught by validate-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifyd.api import PermanentError
from notifyd.config.loading import check_text
from notifyd.recipients.templates import Templates, load_sources

WELCOME = {
    "subject": "Welcome,\n {{ name }}!",
    "body": "Hello {{ name }}, your code is {{ code }}.",
    "html": "<p>Hello {{ name }}</p>",
}


def test_renders_subject_text_and_escaped_html() -> None:
    rendered = Templates({"welcome": WELCOME}).render("welcome", {"name": "<Ana>", "code": 42})
    assert rendered.subject == "Welcome, <Ana>!"  # one line: newlines would break the mail header
    assert rendered.body == "Hello <Ana>, your code is 42."
    assert rendered.html == "<p>Hello &lt;Ana&gt;</p>"


def test_missing_template_and_undefined_variable_are_permanent() -> None:
    templates = Templates({"welcome": WELCOME})
    with pytest.raises(PermanentError, match=r"template 'bye' does not exist \(this channel has: welcome\)"):
        templates.render("bye", {})
    with pytest.raises(PermanentError, match=r"template 'welcome' \(subject\): undefined variable: 'name' is undefined"):
        templates.render("welcome", {"code": 1})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ data.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ data.clear() }}",  # the immutable sandbox refuses changing the notification's data
    ],
)
def test_sandbox_blocks_attribute_tricks(source: str) -> None:
    templates = Templates({"evil": {"body": source}})
    with pytest.raises(PermanentError, match="template 'evil'"):
        templates.render("evil", {"data": {"a": 1}})


def test_runtime_failure_caused_by_data_is_permanent() -> None:
    with pytest.raises(PermanentError, match="ZeroDivisionError"):
        Templates({"t": {"body": "{{ 1 / n }}"}}).render("t", {"n": 0})


def test_directory_files_and_inline_precedence(tmp_path: Path) -> None:
    (tmp_path / "reset.subject.j2").write_text("Reset your password\n")
    (tmp_path / "reset.txt.j2").write_text("Use {{ link }}\n")
    (tmp_path / "reset.html.j2").write_text('<a href="{{ link }}">reset</a>\n')
    (tmp_path / "welcome.txt.j2").write_text("from the directory")
    (tmp_path / "notes.md").write_text("not a template")
    sources = load_sources(inline={"welcome": WELCOME}, directory=str(tmp_path))
    assert sorted(sources) == ["reset", "welcome"] and sources["welcome"] == WELCOME
    rendered = Templates(sources).render("reset", {"link": "https://x.test/?a=1&b=2"})
    assert (rendered.subject, rendered.body) == ("Reset your password", "Use https://x.test/?a=1&b=2")
    assert rendered.html == '<a href="https://x.test/?a=1&amp;b=2">reset</a>'


CONFIG = """\
kafka:
  bootstrap_servers: "localhost:9092"
channels:
  email:
    topics: [notify.email]
    handler: log
    templates:
      welcome:
        subject: "Hi {{ name }"
        body: |
          Hello {{ name }},
          {% if x %}unclosed
"""


def test_validate_config_reports_broken_templates_at_their_position(tmp_path: Path) -> None:
    config, findings = check_text(CONFIG, "f.yaml", {})
    assert config is None
    assert [str(f) for f in findings] == [
        (
            "f.yaml:9:18: channels.email.templates.welcome.subject: template syntax error on line 1 of the template:"
            " unexpected '}'"
        ),
        (
            "f.yaml:10:15: channels.email.templates.welcome.body: template syntax error on line 2 of the template:"
            " Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'."
            " The innermost block that needs to be closed is 'if'."
        ),
    ]


def test_validate_config_checks_templates_dir(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "ok.txt.j2").write_text("fine {{ x }}")
    (folder / "bad.txt.j2").write_text("{% for %}")
    (folder / "headless.subject.j2").write_text("no body")
    text = "kafka: {bootstrap_servers: k:9092}\nchannels:\n  email: {topics: [t], handler: log, templates_dir: templates}\n"
    config_path = tmp_path / "notifyd.yaml"
    config, findings = check_text(text, str(config_path), {})
    assert [f.message for f in findings] == [
        "bad.txt.j2: template syntax error on line 1 of the template: Expected an expression, got 'end of statement block'",
        "headless: template 'headless' has no body file headless.txt.j2",
    ]
    assert {(f.line, f.column, f.key_path) for f in findings} == {(3, 53, "channels.email.templates_dir")}
    (folder / "bad.txt.j2").unlink()
    (folder / "headless.subject.j2").unlink()
    config, findings = check_text(text, str(config_path), {})
    assert findings == [] and config.channels["email"].templates_dir == str(folder)
    config, findings = check_text(text.replace("templates_dir: templates", "templates_dir: nowhere"), "x.yaml", {})
    assert len(findings) == 1 and "cannot read templates" in findings[0].message
