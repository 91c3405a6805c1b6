"""hold_reason: send_at, quiet hours and priority together; the respect_quiet_hours config key."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from notifyd.api import Notification
from notifyd.config.loading import check_text
from notifyd.config.settings import ChannelSettings
from notifyd.recipients.hold import hold_reason
from notifyd.recipients.users import User

RESPECTING = ChannelSettings(name="email", topics=("t",), handler="log", respect_quiet_hours=True)
IGNORING = replace(RESPECTING, respect_quiet_hours=False)
NIGHT_OWL = User(id="u", email="u@example.org", timezone="Europe/Berlin", quiet_hours="22:00-07:00")


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


MIDNIGHT = at("2026-12-04T00:30:00+01:00")
MORNING = at("2026-12-04T07:00:00+01:00")


def notification(**fields) -> Notification:
    return Notification(id="n", channel="email", user_id="u", body="b", **fields)


def test_quiet_hours_hold_until_the_window_ends() -> None:
    assert hold_reason(notification(), NIGHT_OWL, RESPECTING, MIDNIGHT) == ("quiet_hours", MORNING)
    assert hold_reason(notification(), NIGHT_OWL, RESPECTING, MORNING) is None
    assert hold_reason(notification(priority="normal"), NIGHT_OWL, RESPECTING, MIDNIGHT) == ("quiet_hours", MORNING)


def test_nothing_holds_without_every_condition() -> None:
    assert hold_reason(notification(priority="high"), NIGHT_OWL, RESPECTING, MIDNIGHT) is None
    assert hold_reason(notification(), NIGHT_OWL, IGNORING, MIDNIGHT) is None
    assert hold_reason(notification(), None, RESPECTING, MIDNIGHT) is None
    assert hold_reason(notification(), replace(NIGHT_OWL, timezone=None), RESPECTING, MIDNIGHT) is None
    assert hold_reason(notification(), replace(NIGHT_OWL, quiet_hours=None), RESPECTING, MIDNIGHT) is None
    broken = replace(NIGHT_OWL, timezone="Nowhere/City")  # built past the directory's checks: delivered
    assert hold_reason(notification(), broken, RESPECTING, MIDNIGHT) is None


def test_send_at_holds_first_then_quiet_hours() -> None:
    scheduled = notification(send_at=MIDNIGHT)
    assert hold_reason(scheduled, NIGHT_OWL, RESPECTING, MIDNIGHT - 60) == ("scheduled", MIDNIGHT)
    assert hold_reason(scheduled, NIGHT_OWL, RESPECTING, MIDNIGHT) == ("quiet_hours", MORNING)
    assert hold_reason(scheduled, NIGHT_OWL, IGNORING, MIDNIGHT) is None
    urgent = notification(send_at=MIDNIGHT, priority="high")
    assert hold_reason(urgent, NIGHT_OWL, RESPECTING, MIDNIGHT - 60) == ("scheduled", MIDNIGHT)  # high skips only quiet hours
    assert hold_reason(urgent, NIGHT_OWL, RESPECTING, MIDNIGHT) is None


def config(channel: str, *, directory: bool = False) -> str:
    users = "directory: {type: file, path: users.yaml}\n" if directory else ""
    return f"kafka: {{bootstrap_servers: k:9092}}\n{users}channels:\n  a: {{topics: [t], handler: log{channel}}}\n"


def test_the_respect_quiet_hours_key(tmp_path: Path) -> None:
    (tmp_path / "users.yaml").write_text("users: {}\n")
    loaded, findings = check_text(config(""), "n.yaml", {})
    assert findings == [] and loaded.channels["a"].respect_quiet_hours is False
    loaded, findings = check_text(config(", respect_quiet_hours: true", directory=True), str(tmp_path / "n.yaml"), {})
    assert findings == [] and loaded.channels["a"].respect_quiet_hours is True
    _, findings = check_text(config(", respect_quiet_hours: true"), "n.yaml", {})
    [finding] = findings
    assert str(finding) == ("n.yaml:3:55: channels.a.respect_quiet_hours: needs a directory: users' timezone and "
                            "quiet_hours live there (docs/scheduling.md)")
    _, findings = check_text(config(", respect_quiet_hours: sometimes"), "n.yaml", {})
    assert [str(f) for f in findings] == ["n.yaml:3:55: channels.a.respect_quiet_hours: 'sometimes' is not of type 'boolean'"]
