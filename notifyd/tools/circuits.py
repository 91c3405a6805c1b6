"""The circuit breakers' states, read from a running daemon's ``/metrics`` (``notifyd_circuit_state``).

The broker knows nothing of them: ``notifyd status`` asks the daemon whose config it
reads, at its ``metrics.listen`` address, and shows nothing when no daemon answers there.
"""

from __future__ import annotations

import urllib.error
import urllib.request

STATES = {0: "closed", 1: "half-open", 2: "open"}
SERIES = "notifyd_circuit_state"


def circuit_states(listen: str, *, timeout: float) -> dict[str, str]:
    """Each flow-controlled channel's circuit state, by channel; {} when no daemon answers at ``listen``."""
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "::", "[::]", ""):  # listening everywhere: ask it on loopback
        host = "127.0.0.1"
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as reply:
            return parse_states(reply.read().decode())
    except (OSError, urllib.error.URLError, ValueError):
        return {}


def parse_states(text: str) -> dict[str, str]:
    """The ``notifyd_circuit_state`` samples of a Prometheus text page, by channel."""
    # Imported here: the CLI imports every command module, and prometheus_client imported
    # before ``notifyd run`` sets PROMETHEUS_MULTIPROC_DIR keeps the supervisor's series in memory.
    from prometheus_client.parser import text_string_to_metric_families

    states = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == SERIES and "channel" in sample.labels:
                states[sample.labels["channel"]] = STATES.get(int(sample.value), str(sample.value))
    return states
