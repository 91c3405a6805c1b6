"""The README's run command: embedded broker, daemon, samples delivered."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from notifyd.commands import quickstart
from tests.kit.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.kafka


def test_quickstart_delivers_its_samples_and_stops_cleanly() -> None:
    result = subprocess.run([sys.executable, "-m", "notifyd", "quickstart", "--exit", "--samples", "2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "==> 4 of 4 sample notifications delivered" in result.stdout
    assert '"event": "notification delivered"' in result.stderr
    assert '"event": "supervisor stopped"' in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
def test_an_interrupt_during_start_up_stops_the_daemon_and_the_broker(signum: int) -> None:
    quickstart, stdout, stderr = _start_quickstart()
    try:
        wait_until(lambda: stdout.find("listening on "), timeout=60, what="the broker line")
        wait_until(lambda: stderr.find('"event": "supervisor started"'), timeout=60, what="the daemon's start")
        quickstart.send_signal(signum)
        exit_code = quickstart.wait(timeout=60)
    except AssertionError as failure:
        failure.add_note(_tails(stdout, stderr))
        raise
    finally:
        left_running = _stop_all(quickstart, stdout, stderr)
    assert not left_running
    assert exit_code == 130
    assert "==> interrupted; stopping the daemon and the broker" in stdout.text()
    assert "Traceback" not in stderr.text(), stderr.text()[-3000:]
    assert '"event": "supervisor stopped"' in stderr.text()


def test_a_terminal_ctrl_c_stops_the_daemon_before_the_broker() -> None:
    # A terminal sends SIGINT to the whole foreground group. Were the broker in it, it
    # would die first and the channel processes would drain against a dead broker.
    quickstart, stdout, stderr = _start_quickstart()
    try:
        wait_until(lambda: stdout.find("==> running; Ctrl-C stops"), timeout=120, what="the running line")
        os.killpg(quickstart.pid, signal.SIGINT)
        exit_code = quickstart.wait(timeout=60)
    except AssertionError as failure:
        failure.add_note(_tails(stdout, stderr))
        raise
    finally:
        _stop_all(quickstart, stdout, stderr)
    assert exit_code == 0
    assert '"event": "supervisor stopped"' in stderr.text()
    assert '"level": "error"' not in stderr.text(), stderr.text()[-3000:]


def test_a_broker_port_taken_after_it_was_chosen_is_traded_for_another(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bound but not listening: the quickstart's check finds nothing there, and Tansu's bind fails,
    # which is what a port taken between that check and the bind looks like.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        monkeypatch.setattr(quickstart, "PREFERRED_BROKER_PORT", taken.getsockname()[1])
        broker = quickstart._start_broker()
        try:
            assert broker.port != taken.getsockname()[1]
            socket.create_connection(("127.0.0.1", broker.port), timeout=5).close()
        finally:
            broker.stop()


def test_a_metrics_port_taken_after_it_was_chosen_is_traded_for_another(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    # As for the broker: bound, not listening, so the check finds it free and the daemon's
    # bind fails (EX_CONFIG). The quickstart runs in this process to be given that port.
    for name in ("NOTIFYD_BOOTSTRAP", "NOTIFYD_METRICS_PORT", "STATE_DIRECTORY"):
        monkeypatch.setenv(name, "set by the quickstart")  # and put back afterwards
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # pytest keeps its own handlers
    monkeypatch.chdir(ROOT)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setattr(quickstart, "PREFERRED_METRICS_PORT", port)
        exit_code = quickstart.run(argparse.Namespace(config=quickstart.DEFAULT_QUICKSTART_CONFIG, samples=1,
                                                      exit=True))
    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert f"==> port {port} was taken before the daemon could serve /metrics on it; trying another port" in out
    assert re.search(r"==> (\d+) of \1 sample notifications delivered", out), out


def _start_quickstart() -> tuple[subprocess.Popen[str], _Lines, _Lines]:
    """``notifyd quickstart`` in a session of its own, and readers of its two outputs."""
    quickstart = subprocess.Popen([sys.executable, "-m", "notifyd", "quickstart", "--samples", "1"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    return quickstart, _Lines(quickstart.stdout), _Lines(quickstart.stderr)


class _Lines:
    """The lines a child writes to one pipe, read by a thread as they come."""

    def __init__(self, pipe) -> None:
        self._lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self._lines.extend(pipe), daemon=True)
        self._reader.start()

    def read_to_end(self) -> None:
        """Once the child has exited: wait for the lines still in the pipe."""
        self._reader.join(timeout=10)

    def find(self, fragment: str) -> str | None:
        return next((line for line in list(self._lines) if fragment in line), None)

    def text(self) -> str:
        return "".join(self._lines)


def _stop_all(quickstart: subprocess.Popen[str], stdout: _Lines, stderr: _Lines) -> list[int]:
    """Kill the quickstart and whatever it left running; return the pids of the latter.

    So that a failing test leaves nothing behind for the next one.
    """
    if quickstart.poll() is None:
        quickstart.kill()
        quickstart.wait()
    stdout.read_to_end()
    stderr.read_to_end()
    broker_line = stdout.find("listening on ")
    left_running = _left_running(broker_line.rsplit(" ", 1)[1].strip()) if broker_line else []
    for pid in left_running:
        os.kill(pid, signal.SIGKILL)
    return left_running


def _tails(stdout: _Lines, stderr: _Lines) -> str:
    """What the quickstart and its daemon printed last: a timed-out wait says why."""
    return f"quickstart stdout:\n{stdout.text()[-2000:]}\nquickstart stderr:\n{stderr.text()[-4000:]}"


def _left_running(bootstrap: str) -> list[int]:
    """Pids of the broker on ``bootstrap`` and of notifyd processes (daemon, channels) using it."""
    listener = f"tcp://{bootstrap}".encode()
    environment = f"NOTIFYD_BOOTSTRAP={bootstrap}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
            if (b"tansu" in command and listener in command) or (
                    b"notifyd" in command and environment in (proc / "environ").read_bytes()):
                pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids
