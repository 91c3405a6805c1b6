"""The channel process: one consumer of one channel, spawned by the supervisor.

Holds: the process entry (``worker``), the poll loop, delivery with its keyed scheduling,
its attempts (inline, awaited, in chunks on the pool: ``attempt``), the batch paths past
the scheduler while it is idle (``atonce``), deadlines and backoff, offset tracking,
rebalancing, dead-lettering, strict per-key order (``strict``, ``strictdelivery``), the
channel's delivery metrics and consumer lag (``lag``),
broker outages (``outage``), flow control (``flow``), glibc's allocator settings
(``allocator``), and the events it reports to the supervisor (``lifecycle``).

May import ``notifyd.config``, ``notifyd.records``, ``notifyd.recipients``,
``notifyd.handlers``, ``notifyd.ledger`` and the shared top-level modules; never ``notifyd.daemon``,
``notifyd.tools`` or ``notifyd.commands``.
"""
