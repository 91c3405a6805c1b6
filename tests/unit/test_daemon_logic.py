"""Pure parts of the daemon: restart policy, reload planning, sd_notify, metrics folding."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from notifyd.config.loading import check_text
from notifyd.daemon.reloadplan import plan_reload
from notifyd.daemon.restarts import RestartPolicy, RestartState
from notifyd.daemon.sdnotify import SystemdNotifier

BASE = """\
kafka:
  bootstrap_servers: "localhost:9092"
channels:
  email: {topics: [notify.email], handler: log}
  sms: {topics: [notify.sms], handler: log}
"""


def config_of(text: str):
    config, findings = check_text(text, "f.yaml", {})
    assert not findings
    return config


def test_restart_backoff_grows_resets_after_stable_uptime_and_detects_loops() -> None:
    state = RestartState(RestartPolicy(initial_delay=1, max_delay=8, stable_after=30, loop_limit=5,
                                       loop_window=60, cool_off=300))
    delays = [state.after_crash(now=t, uptime=1)[0] for t in (0, 20, 40, 70)]
    assert delays == [1, 2, 4, 8]
    assert state.after_crash(now=200, uptime=100) == (1, False)  # stable uptime resets
    looping = RestartState(RestartPolicy(loop_limit=3, loop_window=10, cool_off=300))
    results = [looping.after_crash(now=t, uptime=0.1) for t in (0, 1, 2)]
    assert results[-1] == (300, True) and not results[0][1]


def test_reload_plan_restarts_only_changed_channels() -> None:
    old = config_of(BASE)
    new = config_of(BASE.replace("sms: {topics: [notify.sms], handler: log}",
                                 "sms: {topics: [notify.sms], handler: log, retries: 5}")
                    + "  push: {topics: [notify.push], handler: log}\n")
    plan = plan_reload(old, new)
    assert (plan.start, plan.stop, plan.restart, plan.keep) == ({"push"}, set(), {"sms"}, {"email"})
    removed = plan_reload(old, config_of(BASE.replace("  sms: {topics: [notify.sms], handler: log}\n", "")))
    assert removed.stop == {"sms"} and removed.keep == {"email"}


def test_kafka_change_restarts_every_channel_but_metrics_change_none() -> None:
    old = config_of(BASE)
    assert plan_reload(old, config_of(BASE.replace("localhost:9092", "kafka:9092"))).restart == {"email", "sms"}
    metrics_only = config_of(BASE + "metrics: {listen: '127.0.0.1:9999'}\n")
    assert plan_reload(old, metrics_only).keep == {"email", "sms"}
    assert plan_reload(old, dataclasses.replace(old, path="other.yaml")).restart == set()


def test_sd_notify_datagrams(tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(address)
    receiver.settimeout(5)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    assert notifier.watchdog_interval == 2.0
    notifier.ready("2 channels running")
    notifier.reloading()
    notifier.stopping()
    received = [receiver.recv(4096).decode() for _ in range(3)]
    receiver.close()
    assert received[0] == "READY=1\nSTATUS=2 channels running"
    assert received[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert received[2].startswith("STOPPING=1")
    assert not SystemdNotifier({}).enabled


def test_dead_process_counters_fold_into_archive(tmp_path: Path) -> None:
    """Run in a subprocess: prometheus_client picks multiprocess storage at import."""
    script = textwrap.dedent(f"""
        import os, subprocess, sys
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        child = '''
        from notifyd.metrics import channel_metrics
        m = channel_metrics()
        m.delivered.labels("email").inc(5)
        m.duration.labels("email").observe(0.2)
        m.inflight.labels("email").set(3)
        print(__import__("os").getpid())
        '''
        pids = [int(subprocess.check_output([sys.executable, "-c", child]).decode()) for _ in range(3)]
        from pathlib import Path
        from notifyd.daemon.metricsdir import MetricsDirectory
        directory = MetricsDirectory(Path({str(tmp_path)!r}))
        before = directory.scrape().decode()
        for pid in pids:
            directory.process_died(pid)
        after = directory.scrape().decode()
        print(sorted(p.name for p in Path({str(tmp_path)!r}).glob("*.db")))
        for text in (before, after):
            print([l for l in text.splitlines() if l.startswith(("notifyd_notifications_delivered_total",
                  "notifyd_delivery_duration_seconds_count", "notifyd_inflight_deliveries{{"))])
    """)
    output = subprocess.check_output([sys.executable, "-c", script], cwd=Path(__file__).parents[2],
                                     env={**os.environ}, text=True).splitlines()
    files, before, after = output[-3], output[-2], output[-1]
    assert files == "['counter_archive.db', 'histogram_archive.db']"
    assert "notifyd_notifications_delivered_total{channel=\"email\"} 15.0" in before
    assert "notifyd_notifications_delivered_total{channel=\"email\"} 15.0" in after
    assert "notifyd_delivery_duration_seconds_count{channel=\"email\"} 3.0" in after
    assert "inflight" in before and "inflight" not in after
