"""The supervisor process: ``notifyd run``.

Holds: the supervisor's main loop, its signal recording, the members (one channel process
each) and their restart policy, stall handling with stack dumps (``stalls``), the reload
plan, the HTTP listener (``/metrics``, ``/healthz``, ``/readyz`` with each channel's state
from ``readiness``), the multiprocess metrics directory and sd_notify.

Never touches Kafka. May import ``notifyd.config``, the shared top-level modules and
``notifyd.channel`` only for what it spawns (``channel.worker.child_main``) and what a
channel process reports (``channel.lifecycle``).
"""
