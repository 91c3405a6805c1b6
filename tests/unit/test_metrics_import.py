"""notifyd.metrics imports prometheus_client's metric classes without its exposition side (issue 23.2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter: what a module imported first is decided at import."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_channel_process_writes_metrics_without_the_exposition_modules(tmp_path: Path) -> None:
    done = _run("""
        import sys
        from notifyd.metrics import channel_metrics
        channel_metrics().delivered.labels("email").inc(2)
        print(sorted(m for m in ("prometheus_client", "prometheus_client.exposition", "http.server", "wsgiref")
                     if m in sys.modules))
    """, tmp_path)
    assert done.stdout.strip() == "[]", done.stderr
    assert list(tmp_path.glob("counter_*.db"))


def test_a_later_import_of_the_package_shares_the_same_classes_and_registry(tmp_path: Path) -> None:
    done = _run("""
        import notifyd.metrics
        import prometheus_client
        import prometheus_client.metrics
        from prometheus_client import REGISTRY, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector
        assert prometheus_client.Counter is notifyd.metrics.Counter is prometheus_client.metrics.Counter
        assert REGISTRY is prometheus_client.registry.REGISTRY
        notifyd.metrics.channel_metrics().delivered.labels("email").inc(3)
        registry = prometheus_client.CollectorRegistry()
        MultiProcessCollector(registry)
        print([l for l in generate_latest(registry).decode().splitlines() if l.startswith("notifyd_notifications_delivered_total")])
    """, tmp_path)
    assert done.stdout.strip() == "['notifyd_notifications_delivered_total{channel=\"email\"} 3.0']", done.stderr


def test_the_package_imported_first_is_used_as_it_is(tmp_path: Path) -> None:
    done = _run("""
        import prometheus_client
        import notifyd.metrics
        print(notifyd.metrics.Gauge is prometheus_client.Gauge)
    """, tmp_path)
    assert done.stdout.strip() == "True", done.stderr
