"""Helpers shared by the test suite; fixtures built on them are in the conftest.py files.

Broker and processes:
    kafka       KafkaKit: create topics, produce, read back, committed offsets (FAST_GROUP)
    daemon      ``notifyd run`` as a real process: log events, /metrics, sd_notify (daemon_config)
    worker      the channel process's ``serve`` in a thread, its config and what it delivered
    workerprocess  ``notifyd worker`` as a real process: start_worker, kill (SIGKILL), finish (SIGTERM)
    config      a minimal valid config as data (base_config)
    proxy       a TCP proxy a test can cut, for broker outages

Handlers and providers:
    handlers    test handlers that record every attempt as a JSON line (Recorder, Flaky, Hangs...)
    intruder    a handler module outside every allow-list that marks when it is imported
    httpserver  a real HTTP(S) server on 127.0.0.1 (ProviderServer, Request, Reply)
    providers   stand-ins for Twilio, FCM, APNs, webhooks and Slack; deliver_once, deliver_all
    smtp        a real SMTP server (aiosmtpd) that records what it receives

Time and loops:
    wait        wait_until / wait_until_async: poll a condition with a deadline, never a bare sleep
    loops       run an ``async def`` test on a fresh event loop (the suite has no asyncio plugin)

Reliability suite:
    scenario    configs, traffic and the final tally (lost, duplicates) of a scenario
    figures     the scenarios' figures, printed and written to the results folder
"""
