"""notifyd: a notification daemon that delivers Kafka events by email, SMS, push and webhooks."""

from notifyd.handler import Handler, Notification, PermanentError, RetryableError

__all__ = ["Handler", "Notification", "PermanentError", "RetryableError", "__version__"]
__version__ = "0.1.0"
