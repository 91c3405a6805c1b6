"""notifyd: a notification daemon that delivers Kafka events by email, SMS, push and webhooks.

The tree follows the two kinds of process:

- ``notifyd.daemon``: the supervisor (``notifyd run``); never touches Kafka;
- ``notifyd.channel``: a channel process, one consumer of one channel;
- ``notifyd.config``: the config file and every librdkafka configuration built from it;
- ``notifyd.handlers``: the built-in handlers and the handler registry;
- ``notifyd.ledger``: the delivery ledger (claimed and sent notification ids, for dedupe);
- ``notifyd.recipients``: the user directory, templates and preparation;
- ``notifyd.records``: the record formats on Kafka (notifications, DLQ headers);
- ``notifyd.tools``: the operator tools' library code (publisher client, DLQ replay);
- ``notifyd.commands``: one thin module per CLI verb.

Shared by every process: ``api`` (the public handler API, re-exported here), ``exitcodes``,
``logs``, ``metrics``, ``redaction`` and ``schemas``. Importing any module does nothing.
"""

from notifyd.api import Handler, Notification, PermanentError, RetryableError, SkipNotification

__all__ = ["Handler", "Notification", "PermanentError", "RetryableError", "SkipNotification", "__version__"]
__version__ = "0.1.0"
