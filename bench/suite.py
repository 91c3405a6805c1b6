"""The benchmark run: parse options, start a broker, run the cases, write the results."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import (
    concurrency,
    flowcost,
    footprint,
    isolation,
    latency,
    ledger,
    machine,
    nocost,
    report,
    throughput,
    validate,
)
from bench.context import Bench, Row, Sizes
from notifyd.tools.devbroker import EmbeddedBroker

RESULTS = Path(__file__).resolve().parent / "results"

# name → (section title, case); run in this order.
CASES: dict[str, tuple[str, Callable[[Bench], list[Row]]]] = {
    "throughput": ("1. Throughput ceiling", throughput.case_throughput),
    "concurrency": ("2. I/O-bound concurrency", concurrency.case_concurrency),
    "latency": ("3. End-to-end latency", latency.case_latency),
    "footprint": ("4. Footprint", footprint.case_footprint),
    "scaling": ("5. Scaling out", throughput.case_scaling),
    "ledger": ("6. Delivery ledger cost", ledger.case_ledger),
    "validate": ("validate-config", validate.case_validate),
    "flowcost": ("7. Flow control, unused", flowcost.case_flow_cost),
    "isolation": ("8. Failure isolation", isolation.case_isolation),
    "memory": ("Memory, a coroutine channel at concurrency 1,000 (case 1's rows alone)", throughput.case_memory),
    "nocost": ("9. No cost when nothing fails: HEAD against a baseline tree", nocost.case_nocost),
}
# Left out of a --quick run unless named with --case: a git worktree and six daemons a round.
NOT_QUICK = {"nocost"}
# Run only when named: case 1 already reports the memory rows.
NAMED_ONLY = {"memory"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/run.py", description="Benchmark notifyd against its own broker.")
    parser.add_argument("--quick", action="store_true", help="one small run of each case (a smoke run)")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases (repeatable)")
    parser.add_argument("--runs", type=int, help="runs per case (default 3, 1 with --quick)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and latest.png go")
    parser.add_argument("--baseline-ref", help=f"case nocost: the git ref to compare with (default {nocost.BASELINE_REF})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.runs:
        sizes = Sizes(**{**sizes.__dict__, "runs": args.runs, "throughput_runs": args.runs})
    chosen = args.case or [name for name in CASES if name not in NAMED_ONLY and not (args.quick and name in NOT_QUICK)]
    command = "bench/run.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-") as scratch:
        workdir = Path(scratch)
        with EmbeddedBroker(log_path=str(workdir / "tansu.log")) as broker:
            bench = Bench(broker.bootstrap_servers, workdir, sizes, baseline_ref=args.baseline_ref)
            sections = {}
            for name in chosen:
                title, case = CASES[name]
                print(f"running {name} ...", file=sys.stderr, flush=True)
                sections[title] = case(bench)
                _echo(sections[title])
    write_results(args.out, sections, command=command.strip(), levels=sizes.levels)
    return 0


def _echo(rows: list[Row]) -> None:
    for row in rows:
        print(f"  {row.figure}: {report.number(row.median, row.unit)} {row.unit}", file=sys.stderr, flush=True)


def write_results(out: Path, sections: dict[str, list[Row]], *, command: str, levels: tuple[int, ...]) -> None:
    """``latest.md`` and ``latest.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(report.render_markdown(sections, machine.describe(), command=command))
    rows = {row.key: row for section in sections.values() for row in section}
    report.write_plot(out / "latest.png", rows, levels=levels)
    print(f"wrote {out / 'latest.md'} and {out / 'latest.png'}", file=sys.stderr)
