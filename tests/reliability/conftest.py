"""The reliability suite's own broker behind a proxy; its figures are a plugin (tests/kit/figureplugin.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifyd.tools.devbroker import EmbeddedBroker, free_port
from tests.kit.kafka import KafkaKit
from tests.kit.proxy import TcpProxy


@pytest.fixture
def proxied_kafka(tmp_path) -> Iterator[tuple[TcpProxy, KafkaKit]]:
    """A broker of its own reached only through a TCP proxy the test can cut (advertising the proxy)."""
    proxy = TcpProxy(("127.0.0.1", free_port()))
    broker = EmbeddedBroker(proxy.target[1], advertised=proxy.address, log_path=str(tmp_path / "tansu.log"))
    with broker, proxy:
        kit = KafkaKit(proxy.address)
        yield proxy, kit
        kit.producer.purge()
        kit.close()
