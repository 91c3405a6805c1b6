"""Library code of the operator tools: the publisher client, DLQ reading and replay,
topic scanning, the embedded development broker, and what every tool command shares.

Runs in the operator's own short-lived process, never in the daemon. May import
``notifyd.config``, ``notifyd.records`` and the shared top-level modules.
"""
