"""What ships: the wheel carries the schemas; the systemd unit verifies and is hardened."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "notifyd.service"


def test_wheel_ships_schemas_and_console_script(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("notifyd-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"notifyd/schemas/notifyd.schema.json", "notifyd/schemas/notification.schema.json"} <= names
    assert "notifyd = notifyd.cli:main" in entry_points


def installed_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's notifyd, as an install would."""
    notifyd = Path(sys.executable).parent / "notifyd"
    if not notifyd.exists():
        pytest.skip("the notifyd console script is not installed in this environment")
    unit = tmp_path / "notifyd.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/notifyd", str(notifyd)))
    return unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies_and_rates_ok(tmp_path: Path) -> None:
    unit = installed_unit(tmp_path)
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)],
                              capture_output=True, text=True)
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert exposure <= 2.5, security.stdout[-2000:]


def test_unit_has_what_operations_rely_on() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=78",
                 "EnvironmentFile=-/etc/notifyd/notifyd.env", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert line in text
    assert re.search(r"^WatchdogSec=\d+", text, re.MULTILINE)


def test_dockerfile_runs_as_non_root_with_healthcheck() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text and re.search(r"^USER notifyd$", text, re.MULTILINE)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["notifyd", "run"]' in text and "/etc/notifyd" in text
