"""Kafka to providers in one daemon: email over SMTP (STARTTLS) and iOS push over HTTP/2.

Recipients by address and by user id (a directory file), a template, an opted-out user
skipped, and a dead device token dead-lettered: each notification ends where it should.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import trustme
import yaml

from tests.kit.daemon import Daemon
from tests.kit.httpserver import ProviderServer
from tests.kit.kafka import FAST_GROUP
from tests.kit.providers import ApnsStandIn, apns_error, make_apns_key
from tests.kit.smtp import running_smtp_server
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka

TEAM, KEY_ID, BUNDLE = "TEAM123456", "KEY1234567", "com.example.app"
ANA_DEVICE, DEAD_DEVICE, PLAIN_DEVICE = "a1" * 32, "de" * 32, "b2" * 32


def test_email_and_push_channels_deliver_to_their_servers(kafka, unique, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    key_pem, public_key = make_apns_key()
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_text(key_pem)
    stand_in = ApnsStandIn(public_key, TEAM, KEY_ID, BUNDLE)
    stand_in.outcomes[DEAD_DEVICE] = apns_error(410, "Unregistered", timestamp=1700000000000)
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": {
        "u-ana": {"name": "Ana", "email": "ana@example.com", "apns_tokens": [ANA_DEVICE]},
        "u-bo": {"name": "Bo", "email": "bo@example.com", "opt_out": ["email"]},
    }}))
    email, push = unique("email"), unique("push")
    kafka.create_topics(email, push, f"{email}.dlq", f"{push}.dlq")

    with running_smtp_server(tls_context=server_tls) as smtp, \
            ProviderServer(stand_in, tls=ca, tmp_dir=tmp_path) as apns:
        config = tmp_path / "notifyd.yaml"
        config.write_text(yaml.safe_dump({
            "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
            "metrics": {"listen": "127.0.0.1:${NOTIFYD_METRICS_PORT}"},
            "directory": {"type": "file", "path": "users.yaml"},
            "channels": {
                "email": {
                    "topics": [email], "handler": "smtp", "dlq": f"{email}.dlq", "group_id": unique("g"),
                    "options": {"host": "127.0.0.1", "port": smtp.port, "sender": "noreply@example.com",
                                "ca_file": str(ca_file)},
                    "templates": {"welcome": {"subject": "Welcome, {{ user.name }}",
                                              "body": "Your code is {{ code }}."}},
                },
                "ios": {
                    "topics": [push], "handler": "apns", "dlq": f"{push}.dlq", "group_id": unique("g"),
                    "retries": 1, "backoff": {"initial": 0.05, "max": 0.1},
                    "options": {"team_id": TEAM, "key_id": KEY_ID, "topic": BUNDLE,
                                "private_key_file": str(key_file), "base_url": apns.url, "ca_file": str(ca_file)},
                },
            },
        }))
        daemon = Daemon(config, tmp_path).start()
        try:
            daemon.wait_ready()
            for notification in (
                {"id": "mail-1", "to": "carol@example.com", "subject": "Hello", "body": "Plain hello."},
                {"id": "mail-2", "user_id": "u-ana", "template": "welcome", "data": {"code": 4711}},
                {"id": "mail-3", "user_id": "u-bo", "body": "Bo opted out of email."},
            ):
                kafka.produce(email, json.dumps(notification))
            for notification in (
                {"id": "push-1", "to": PLAIN_DEVICE, "subject": "Ping", "body": "By token."},
                {"id": "push-2", "user_id": "u-ana", "subject": "Hi Ana", "body": "By user id."},
                {"id": "push-3", "to": DEAD_DEVICE, "body": "To an uninstalled app."},
            ):
                kafka.produce(push, json.dumps(notification))
            kafka.flush()

            received = smtp.wait_for(2, timeout=60)
            wait_until(lambda: len(stand_in.delivered) == 2, timeout=60, what="two pushes")
            wait_until(lambda: daemon.metric("notifyd_notifications_skipped_total", channel="email",
                                             reason="opted_out") == 1, what="the opted-out user skipped")
            [dead] = kafka.read(f"{push}.dlq", 1, timeout=60)
        finally:
            assert daemon.stop() == 0
            daemon.close()

    by_recipient = {r.recipients: r for r in received}
    assert set(by_recipient) == {("carol@example.com",), ("ana@example.com",)}
    welcome = by_recipient[("ana@example.com",)]
    assert welcome.tls and welcome.message["Subject"] == "Welcome, Ana"
    assert welcome.message.get_content().strip() == "Your code is 4711."
    assert by_recipient[("carol@example.com",)].message["Subject"] == "Hello"

    paths = sorted(request.path for request in stand_in.delivered)
    assert paths == sorted([f"/3/device/{PLAIN_DEVICE}", f"/3/device/{ANA_DEVICE}"])
    assert all(request.http_version == "2" for request in stand_in.delivered)
    headers = {name: value.decode() for name, value in dead.headers()}
    assert json.loads(dead.value())["id"] == "push-3"
    assert headers["notifyd.error.reason"] == "permanent" and "Unregistered" in headers["notifyd.error.message"]
    assert headers["notifyd.attempts"] == "1"
