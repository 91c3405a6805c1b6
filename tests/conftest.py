"""Shared fixtures: a real broker for the session, config files, Kafka helpers, daemons, an SMTP server.

The helpers themselves live in ``tests/kit``; only fixtures are here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kit.config import base_config
from tests.kit.daemon import Daemon
from tests.kit.kafka import KafkaKit
from tests.kit.postgres import postgres_bin, running_postgres
from tests.kit.smtp import SmtpServer, running_smtp_server

pytest_plugins = ["tests.kit.figureplugin"]


# Run one after another on one xdist worker (``make test`` runs two): the reliability
# scenarios time gaps and recoveries, so two of them must not share the cores; the
# quickstart and the default-listener test both want the metrics port 9464.
SERIAL_GROUP = pytest.mark.xdist_group("serial")
SERIAL_PATHS = ("tests/reliability/", "tests/integration/test_quickstart.py")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the group marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the broker ``kafka`` (``-m "not kafka"`` runs without one); group the serial ones."""
    for item in items:
        if "kafka_bootstrap" in item.fixturenames:
            item.add_marker(pytest.mark.kafka)
        if item.nodeid.startswith(SERIAL_PATHS):
            item.add_marker(SERIAL_GROUP)


@pytest.fixture(scope="session", autouse=True)
def session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test writes a ledger to the real /var/lib/notifyd or ~/.local/state: the default state dir is a temp one.

    Set before any fixture starts a process, so session-scoped ones and subprocesses inherit it.
    """
    path = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATE_DIRECTORY", str(path))
        yield path


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own default state directory: a ledger shared between tests would suppress "duplicates"."""
    path = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(path))
    return path


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka-compatible broker: ``NOTIFYD_TEST_BOOTSTRAP``, or an embedded one."""
    external = os.environ.get("NOTIFYD_TEST_BOOTSTRAP")
    if external:
        yield external
        return
    from notifyd.tools.devbroker import EmbeddedBroker

    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=str(log_path)) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def kafka(kafka_bootstrap: str) -> Iterator[KafkaKit]:
    """Produce, consume and create topics on the test broker."""
    kit = KafkaKit(kafka_bootstrap)
    yield kit
    kit.close()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that no other test uses: topics and groups survive between tests on one broker."""

    def make(prefix: str) -> str:
        return f"{prefix}.{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config file: ``write_config(data)``, or ``write_config(text="...")``."""
    counter = iter(range(1_000_000))

    def write(data: dict[str, Any] | None = None, *, text: str | None = None, name: str | None = None) -> Path:
        path = tmp_path / (name or f"notifyd-{next(counter)}.yaml")
        path.write_text(text if text is not None else yaml.safe_dump(data or base_config(), sort_keys=False))
        return path

    return write


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start ``notifyd run`` on a config file; every daemon started is killed at teardown."""
    started: list[Daemon] = []

    def start(config: Path, **environ: str) -> Daemon:
        workdir = tmp_path / f"daemon-{len(started)}"
        workdir.mkdir()
        instance = Daemon(config, workdir).start(**environ)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS, no AUTH) with the default refusals."""
    with running_smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the module's tests (tests/kit/postgres.py).

    Without the binaries it skips on a developer's machine, but fails under CI, where
    ``make test`` installs them: there a skip would hide that these tests never ran.
    """
    binaries = postgres_bin()
    if binaries is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) are not installed; `make test` installs them as root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with running_postgres(binaries) as dsn:
        yield dsn
