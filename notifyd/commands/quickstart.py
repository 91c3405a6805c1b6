"""``notifyd quickstart``: the embedded default, for trying notifyd on a fresh machine.

It starts a local Kafka-compatible broker, creates the topics, runs ``notifyd run`` on
the quickstart config, sends a few sample notifications and shows them delivered.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import NamedTuple

from notifyd.exitcodes import ExitCode
from notifyd.tools.devbroker import BrokerExited, BrokerUnavailable, EmbeddedBroker, free_port

DEFAULT_QUICKSTART_CONFIG = "config/quickstart.yaml"
PREFERRED_BROKER_PORT = 9092
PREFERRED_METRICS_PORT = 9464
BROKER_START_ATTEMPTS = 3  # a port found free may be taken before the broker binds it: then another
DAEMON_START_ATTEMPTS = 3  # likewise for the daemon's metrics port
READY_TIMEOUT = 90.0
DELIVERY_TIMEOUT = 60.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="start an embedded broker, run the daemon on the example config and send samples",
    )
    parser.add_argument("--config", default=DEFAULT_QUICKSTART_CONFIG, metavar="PATH",
                        help=f"the config to run on the embedded broker (default: {DEFAULT_QUICKSTART_CONFIG})")
    parser.add_argument("--samples", type=int, default=3, help="sample notifications per channel (default: 3)")
    parser.add_argument("--exit", action="store_true", help="stop once the samples are delivered")
    parser.set_defaults(func=run)


def _port(preferred: int) -> int:
    try:
        return free_port() if _in_use(preferred) else preferred
    except OSError:
        return free_port()


def _start_broker() -> EmbeddedBroker:
    """The embedded broker on the preferred port if it is free, else on another; a bind lost to a race is retried."""
    port = _port(PREFERRED_BROKER_PORT)
    for _ in range(BROKER_START_ATTEMPTS - 1):
        try:
            return EmbeddedBroker(port, own_session=True).start()
        except BrokerExited as exc:
            _say(f"{exc}; trying another port")
            port = free_port()
    return EmbeddedBroker(port, own_session=True).start()


def _in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _taken(port: int) -> bool:
    """Whether another socket holds ``port`` on the loopback, listening or only bound."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def run(args: argparse.Namespace) -> int:
    # Ctrl-C, SIGTERM and a closed terminal (SIGHUP) only record the request, at any point
    # from here on: each wait below checks it, so an interrupt during start-up still stops
    # the daemon and the broker (both in sessions of their own), and never leaves them
    # running or prints a traceback.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    try:
        broker = _start_broker()
    except BrokerUnavailable as exc:
        print(f"notifyd quickstart: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    metrics_port = _port(PREFERRED_METRICS_PORT)
    # The delivery ledger lives as long as the embedded broker: in a directory of this run's own,
    # not the host's state directory (which would keep ids across runs, and needs no root here).
    state_dir = tempfile.mkdtemp(prefix="notifyd-quickstart-")
    os.environ.update(NOTIFYD_BOOTSTRAP=broker.bootstrap_servers, NOTIFYD_METRICS_PORT=str(metrics_port),
                      STATE_DIRECTORY=state_dir)
    _say(f"embedded broker (Tansu) listening on {broker.bootstrap_servers}")
    daemon: subprocess.Popen[bytes] | None = None
    try:
        from notifyd.cli import main

        if stop.is_set():
            return _interrupted()
        if main(["topics", "ensure", "--config", args.config]) != 0:
            return ExitCode.FAILED
        if stop.is_set():
            return _interrupted()
        started = _start_daemon(args.config, metrics_port, stop)
        daemon = started.process
        return _drive(args, started, stop)
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait()
        broker.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


class StartedDaemon(NamedTuple):
    """The daemon ``notifyd run`` in a process of its own, and what its start came to."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    settled: bool  # ready or exited before READY_TIMEOUT, and no stop asked for


def _start_daemon(config: str, metrics_port: int, stop: threading.Event) -> StartedDaemon:
    """The daemon, waited on until it is ready, exits or a stop is asked for.

    A port found free may be taken before the daemon listens on it: the daemon then exits
    with EX_CONFIG, and is started again on another port.
    """
    for _ in range(DAEMON_START_ATTEMPTS - 1):
        daemon = _daemon_waited_on(config, metrics_port, stop)
        if daemon.process.poll() != ExitCode.CONFIG or not _taken(metrics_port):
            return daemon
        _say(f"port {metrics_port} was taken before the daemon could serve /metrics on it; trying another port")
        metrics_port = free_port()
    return _daemon_waited_on(config, metrics_port, stop)


def _daemon_waited_on(config: str, metrics_port: int, stop: threading.Event) -> StartedDaemon:
    """One start of the daemon with /metrics on ``metrics_port``."""
    os.environ["NOTIFYD_METRICS_PORT"] = str(metrics_port)
    # Its own session: a Ctrl-C reaches only this process, which then stops the
    # daemon once with SIGTERM (a second signal would make the daemon kill its children).
    process = subprocess.Popen([sys.executable, "-m", "notifyd", "run", "--config", config], start_new_session=True)
    ready = f"http://127.0.0.1:{metrics_port}/readyz"
    settled = _wait_for(lambda: _get(ready) == 200 or process.poll() is not None, READY_TIMEOUT, stop)
    return StartedDaemon(process, metrics_port, settled)


def _drive(args: argparse.Namespace, started: StartedDaemon, stop: threading.Event) -> int:
    daemon, base = started.process, f"http://127.0.0.1:{started.metrics_port}"
    if not started.settled:
        if stop.is_set():
            return _interrupted()
        _say("the daemon did not become ready")
        return ExitCode.FAILED
    if daemon.poll() is not None:
        _say(f"the daemon exited with code {daemon.returncode}")
        return ExitCode.FAILED
    sent = _send_samples(args)
    delivered = _wait_for(lambda: _delivered(base) >= sent, DELIVERY_TIMEOUT, stop)
    if stop.is_set():
        return _interrupted()
    _say(f"{int(_delivered(base))} of {sent} sample notifications delivered"
         + ("" if delivered else " (timed out waiting for the rest)"))
    _say(f"metrics:  curl {base}/metrics    health: {base}/healthz  {base}/readyz")
    _say(f"send one: NOTIFYD_BOOTSTRAP={os.environ['NOTIFYD_BOOTSTRAP']} notifyd send --config {args.config} "
         "--channel email --to you@example.com --subject hello --body 'it works'")
    if args.exit or not delivered:
        return ExitCode.OK if delivered else ExitCode.FAILED
    _say("running; Ctrl-C stops the daemon and the broker")
    while not stop.is_set() and daemon.poll() is None:
        stop.wait(0.5)
    return ExitCode.OK


def _interrupted() -> int:
    _say("interrupted; stopping the daemon and the broker")
    return ExitCode.INTERRUPTED


def _send_samples(args: argparse.Namespace) -> int:
    from notifyd.tools.client import Publisher

    sent = 0
    with Publisher(args.config) as publisher:
        for channel in publisher.config.channels:
            for number in range(1, args.samples + 1):
                notification_id = publisher.send(channel, to=f"user{number}@example.com",
                                                 subject=f"Sample {number}",
                                                 body=f"Sample notification {number} on channel {channel}")
                _say(f"sent {notification_id} to channel {channel}")
                sent += 1
    return sent


def _delivered(base: str) -> float:
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("notifyd_notifications_delivered_total{"))


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _wait_for(condition, timeout: float, stop: threading.Event) -> bool:
    """True once ``condition`` holds; False at the deadline or once a stop is requested."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if condition():
            return True
        stop.wait(0.2)
    return False


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)
