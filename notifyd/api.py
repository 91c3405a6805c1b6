"""The public handler API: ``Handler``, ``Notification`` and the errors a handler raises.

A handler is a class whose constructor takes the channel's ``options`` as keyword
arguments and whose ``send`` delivers one notification, either as a plain method
(run in a thread pool, or on the event loop when ``blocking`` is False) or as
``async def`` (run on the channel's event loop). ``send`` returns when the provider
has accepted the notification (optionally returning the provider's message id, a ``str``,
which the delivery ledger and outcome events record), or raises:

- ``RetryableError``: failed for now (``retry_after`` seconds, when the provider said);
- ``PermanentError``: can never succeed; dead-lettered at once;
- ``SkipNotification``: deliberately not delivered; finished, counted by its reason;
- anything else: treated as retryable.

Everything here is re-exported by ``notifyd`` itself; ``docs/handlers.md`` shows a complete
handler. This module imports nothing else of notifyd.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

OptionProblem = tuple[tuple[str | int, ...], str]


class PermanentError(Exception):
    """Delivery can never succeed: the notification goes to the DLQ without retrying."""


class RetryableError(Exception):
    """Delivery failed for now; ``retry_after`` (seconds) overrides the backoff delay.

    ``throttled``: the provider asked the sender to slow down (a 429, its own rate-limit
    answer); a channel with flow control then slows down as a whole (docs/flow-control.md).
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None, throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled


class SkipNotification(Exception):
    """Deliberately not delivered (e.g. the user opted out): finished, not dead-lettered."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason


@dataclass(frozen=True)
class Notification:
    """One notification as a handler sees it."""

    id: str
    channel: str
    to: str | None = None
    subject: str | None = None
    body: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, bytes] = field(default_factory=dict)
    attempt: int = 1
    user_id: str | None = None
    template: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    html: str | None = None
    category: str | None = None
    # Epoch seconds: deliver no earlier than ``send_at``; never deliver at or after ``expires_at``.
    send_at: float | None = None
    expires_at: float | None = None
    # "high" is never held back by the user's quiet hours; anything else is "normal".
    priority: str = "normal"

    @classmethod
    def _from_valid(cls, values: dict[str, Any]) -> Notification:
        """The notification of already-checked field values (``id`` and ``channel`` at least, no other keys).

        Takes ``values`` over: the caller must not use the dict again. The frozen
        ``__init__`` sets its 16 fields one ``object.__setattr__`` at a time (~1.2 us, a
        third of parsing a record). A dict of every field becomes the object's
        ``__dict__`` as it is, with no copy (~0.1 us); otherwise the defaults are filled
        in first (~0.6 us). Either way it is the same object ``__init__`` gives (equal,
        immutable, ``dataclasses.replace`` works).
        """
        notification = object.__new__(cls)
        if len(values) == _FIELD_COUNT:
            object.__setattr__(notification, "__dict__", values)
            return notification
        state = notification.__dict__  # the mutable defaults one by one: update(data={}, ...) builds a dict a call
        state.update(_PLAIN_DEFAULTS)
        state["data"], state["headers"], state["metadata"] = {}, {}, {}
        state.update(values)
        return notification

    def _with_attempt(self, attempt: int) -> Notification:
        """This notification for its ``attempt``-th attempt: ``dataclasses.replace`` without its ~4 us.

        The same object ``replace`` gives (every field copied, none checked again); a retry
        makes one per attempt.
        """
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.__dict__["attempt"] = attempt
        return copy


_PLAIN_DEFAULTS = {item.name: item.default for item in fields(Notification) if item.default is not MISSING}
_FIELD_COUNT = len(fields(Notification))


class Handler:
    """Base class of every handler; subclasses override ``send``.

    ``options_schema`` is the JSON Schema of the handler's options; ``validate-config``
    checks the YAML ``options`` against it before the handler is ever constructed.
    """

    options_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    # False promises that a plain ``send`` is quick and never waits on I/O that can hang
    # (it writes a log line, a local file): it is then called on the event loop, with no
    # thread hop. The channel's ``timeout`` cannot interrupt such a call, and while it
    # runs nothing else of the channel does. ``async def send`` ignores this attribute.
    blocking: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        self.options = options

    @classmethod
    def check_options(cls, options: Mapping[str, Any], *, channel: Mapping[str, Any]) -> Iterable[OptionProblem]:
        """Checks the schema cannot express, as ``(path within options, message)`` pairs.

        Called by ``validate-config`` only when the options already match ``options_schema``.
        """
        return ()

    def send(self, notification: Notification) -> str | None:
        """Deliver one notification, or raise (``RetryableError``, ``PermanentError``, anything else: retried).

        May return the provider's message id (a ``str``) for the ledger and outcome events.

        An ``async def send`` runs in a task that goes on to deliver other notifications
        after it: a context variable it sets must be reset before it returns.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; called once when the channel process stops (may be ``async``)."""
