"""The delivery ledger: which notification ids a channel has claimed and sent, so a redelivery is not re-sent.

Holds: the pure claim decision (``decision``: states, lease and dedupe-window
arithmetic), the storages (``sqlitestore``, ``pgstore``) behind one small interface
(``store``), the batching ``Ledger`` (``ledger``), opening one from the settings
(``opening``), the handler guard the channel process wraps its handler in (``guard``),
what a channel process builds from them (``channelside``), the read of a consumed
batch's records at once (``prefetch``), a notification's history (``history``) and the
per-key queues of ``ordering: strict`` channels (``order``: pure, ``orderqueue``).

Used by the channel process. May import ``notifyd.api``, ``notifyd.config``,
``notifyd.records``, ``notifyd.metrics`` and the shared top-level modules; never
``notifyd.channel``, ``notifyd.daemon``, ``notifyd.tools`` or ``notifyd.commands``.
"""
