"""Flow control of one channel process: rate limit, provider backpressure, circuit breaker.

Pure cores, each a function of its inputs and of a clock reading passed in: the token
bucket (``bucket``), the rate's share per member (``share``), the AIMD reaction to
throttling answers (``aimd``), the circuit breaker (``breaker``) and the policy that
combines them (``policy``). ``gate`` is the asyncio edge the delivery awaits before an
attempt and tells each outcome to; it also owns the metrics and the log lines.

Part of ``notifyd.channel``: may import ``notifyd.api``, ``notifyd.config`` and the shared
top-level modules; imports nothing else of the channel process.
"""
