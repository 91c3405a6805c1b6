"""Loopback metrics by default, secrets never shown, handler modules outside the allow-list refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest
import yaml

from notifyd.config.loading import load_config
from notifyd.config.settings import DEFAULT_METRICS_LISTEN
from tests.kit.daemon import ROOT, daemon_config
from tests.kit.scenario import channel, produce
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

INTRUDER = "tests.kit.intruder:Intruder"


def validate(path, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "notifyd", "validate-config", str(path)], check=False, cwd=ROOT,
                          env={**os.environ, **environ}, capture_output=True, text=True, timeout=60)


def test_metrics_listen_on_loopback_by_default(kafka, unique, write_config, daemon):
    data = daemon_config(kafka.bootstrap, {"quiet": {"topics": [unique("t")], "handler": "log"}})
    del data["metrics"]
    config = write_config(data)
    assert load_config(str(config)).metrics_listen == DEFAULT_METRICS_LISTEN == "127.0.0.1:9464"
    port = int(DEFAULT_METRICS_LISTEN.rpartition(":")[2])
    if _listening_addresses(port):
        pytest.skip(f"port {port} is taken on this machine; the default listener cannot be started here")
    notifyd = daemon(config)
    notifyd.metrics_port = port
    notifyd.wait_ready()
    assert _listening_addresses(port) == {"127.0.0.1"}
    assert notifyd.stop() == 0


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as file:
            for line in list(file)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_address)[::-1])
    words = bytes.fromhex(hex_address)
    return socket.inet_ntop(socket.AF_INET6, b"".join(words[i:i + 4][::-1] for i in range(0, 16, 4)))


def test_secrets_from_the_environment_never_appear(kafka, unique, tmp_path, write_config, daemon, figures):
    secret = f"tok-{uuid.uuid4().hex}"
    topic, dlq = unique("secret"), unique("secret.dlq")
    kafka.create_topics(topic, dlq)
    data = daemon_config(kafka.bootstrap, {
        "careless": channel(topic, tmp_path / "careless.jsonl", group_id=unique("g"), dlq=dlq, retries=1,
                            handler="tests.kit.handlers:Indiscreet", options={"token": "${NOTIFYD_TEST_TOKEN}"}),
    })
    config = write_config(data)
    notifyd = daemon(config, NOTIFYD_TEST_TOKEN=secret)
    notifyd.wait_ready()
    produce(kafka, topic, ["perm-1", "fail-1"])
    dead = kafka.read(dlq, 2, timeout=30)
    assert len(dead) == 2
    for message in dead:
        for name, value in message.headers():
            assert secret.encode() not in (value or b""), f"the secret is in DLQ header {name}"
        assert b"***" in dict(message.headers())["notifyd.error.message"]
    status, metrics = notifyd.get("/metrics")
    assert status == 200 and secret not in metrics
    assert notifyd.stop() == 0
    assert notifyd.events("notification failed, writing it to the dlq")
    assert secret not in notifyd.log_path.read_text(errors="replace"), "the secret is in the daemon's log"

    data["channels"]["careless"]["concurrency"] = "${NOTIFYD_TEST_TOKEN}"  # invalid: not an integer
    invalid = write_config(data)
    checked = validate(invalid, NOTIFYD_TEST_TOKEN=secret)
    assert checked.returncode == 1 and "concurrency" in checked.stdout
    assert secret not in checked.stdout + checked.stderr
    refused = daemon(invalid, NOTIFYD_TEST_TOKEN=secret)
    assert refused.process.wait(30) == 78
    assert secret not in refused.log_path.read_text(errors="replace")
    figures.add("security", secret_leaks_in_logs_metrics_dlq_errors=0)


def test_handler_modules_outside_the_allow_list_are_refused_unimported(kafka, unique, tmp_path, write_config,
                                                                       daemon, figures):
    mark = tmp_path / "intruder-imported"
    environ = {"NOTIFYD_TEST_INTRUDER_MARK": str(mark)}
    allowed = daemon_config(kafka.bootstrap, {"quiet": {"topics": [unique("t")], "handler": "log"}},
                            allowed_handler_modules=["tests.kit.handlers"])
    intruding = {**allowed, "channels": {**allowed["channels"],
                                         "intruder": {"topics": [unique("t")], "handler": INTRUDER}}}
    lookalike = {**allowed, "channels": {"x": {"topics": [unique("t")], "handler": "tests.kit.handlersx:Recorder"}}}

    checked = validate(write_config(intruding), **environ)
    assert checked.returncode == 1
    assert "handler module 'tests.kit.intruder' is not in allowed_handler_modules" in checked.stdout
    assert "not in allowed_handler_modules" in validate(write_config(lookalike)).stdout

    refused = daemon(write_config(intruding), **environ)
    assert refused.process.wait(30) == 78

    config = write_config(allowed, name="notifyd.yaml")
    notifyd = daemon(config, **environ)
    notifyd.wait_ready()
    config.write_text(yaml.safe_dump(intruding))
    notifyd.signal(signal.SIGHUP)
    wait_until(lambda: notifyd.events("reload refused: config invalid"), what="the reload refused")
    assert not notifyd.child_pids("intruder")
    assert notifyd.stop() == 0
    assert not mark.exists(), "a refused handler module was imported"
    figures.add("security", disallowed_handler_refused_by="validate-config, run (exit 78), reload")
