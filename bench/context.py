"""What every case is given (the broker, a work directory, the sizes) and what it returns."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import median


@dataclass(frozen=True)
class Sizes:
    """How much work each case does; ``quick()`` is the smoke-run variant."""

    runs: int = 3
    throughput_runs: int = 5  # case 1's ratio varies most from run to run (2 shared cores)
    bulk: int = 200_000          # case 1: notifications through one channel
    scale_bulk: int = 400_000    # case 5: notifications shared by one or two daemons (all prefetched)
    concurrency_seconds: float = 4.0  # case 2: work per level, in seconds at the bound
    latency_seconds: float = 10.0     # case 3: steady-rate window
    isolation_bulk: int = 50_000      # case 8: notifications, 30% of them retried twice through the delay topics
    levels: tuple[int, ...] = (1, 16, 64, 256)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(runs=1, throughput_runs=1, bulk=50_000, scale_bulk=30_000, concurrency_seconds=1.5,
                   latency_seconds=4.0, isolation_bulk=20_000)


@dataclass
class Bench:
    """The running benchmark: where the broker is, where files go, how big the cases are."""

    bootstrap: str
    workdir: Path
    sizes: Sizes = field(default_factory=Sizes)
    baseline_ref: str | None = None  # case 9's git ref to compare with (``bench.nocost.BASELINE_REF`` if None)

    def name(self, prefix: str) -> str:
        """A topic, group or directory name no other run uses (topics live as long as the broker)."""
        return f"{prefix}.{uuid.uuid4().hex[:8]}"

    def directory(self, prefix: str) -> Path:
        path = self.workdir / self.name(prefix)
        path.mkdir(parents=True)
        return path


@dataclass
class Row:
    """One figure of the results table: its value in each run and how it compares to a target."""

    key: str
    figure: str
    runs: list[float]
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def median(self) -> float:
        return median([v for v in self.runs if not math.isnan(v)])
