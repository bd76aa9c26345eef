#!/usr/bin/env python3
"""What each rule of a finished run cost: jobs, wall time, CPU time, peak memory, disk.

Reads the `benchmark:` files of a run (one TSV per job, RESULTS/benchmarks/<rule>/...; the
rule is the first part of the path) and the list of the run's outputs with the rule that
made each, as `snakemake --detailed-summary` prints it. Prints one Markdown table row per
rule, in the order the rules started:

  jobs       benchmark files of the rule
  wall       sum of the jobs' wall times; "longest" is the longest job's
  elapsed    from the first job's start to the last job's end (a benchmark file is written
             as its job ends): with jobs in parallel, less than the sum
  CPU        sum of the jobs' CPU times (user + system of the job's processes)
  CPU/wall   CPU time over wall time: 1.0 is one core busy for the whole job
  peak RSS   the largest resident set of any one job of the rule
  disk       bytes of the rule's outputs that exist now (a folder counts with its
             contents; temp() outputs deleted after use count 0)

Example (tests/scale/rehearse.sh runs this after the full-size rehearsal):
  snakemake --detailed-summary --configfile my.yaml > outputs.tsv
  python scripts/report_stages.py --benchmarks results/benchmarks --outputs outputs.tsv
"""

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import vww.base.arithmetic  # noqa: F401  (first: see vww/base/arithmetic.py)

from vww.base.cli import InputError, cli_parser, main_guard
from vww.base.files import write_text

BENCHMARK_COLUMNS = ("s", "max_rss", "cpu_time")


@dataclass
class RuleCost:
    jobs: int = 0
    wall_s: float = 0.0
    longest_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    disk_bytes: int = 0
    first_start: float = field(default=float("inf"))
    last_end: float = 0.0

    @property
    def elapsed_s(self):
        return max(self.last_end - self.first_start, 0.0)


def _number(value):
    """A benchmark value; Snakemake writes NA where it measured nothing (a job too short)."""
    return 0.0 if value in ("NA", "-", "") else float(value)


def read_benchmark(path):
    """{column: value} of the one row of a Snakemake benchmark file."""
    with open(path, newline="") as table:
        rows = list(csv.DictReader(table, delimiter="\t"))
    if len(rows) != 1 or not set(BENCHMARK_COLUMNS) <= set(rows[0]):
        raise InputError(path, f"not a Snakemake benchmark file (one row with columns "
                               f"{', '.join(BENCHMARK_COLUMNS)})")
    return {column: _number(rows[0][column]) for column in BENCHMARK_COLUMNS}


def disk_bytes(path):
    """Bytes of a file, or of a folder with everything in it; 0 when it does not exist."""
    path = Path(path)
    if path.is_dir():
        return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
    return path.stat().st_size if path.is_file() else 0


def rule_costs(benchmarks, outputs_table):
    """{rule: RuleCost} of the run whose benchmarks folder and detailed summary are given."""
    costs = {}
    benchmarks = Path(benchmarks)
    for path in sorted(benchmarks.rglob("*.tsv")):
        rule = path.relative_to(benchmarks).parts[0].removesuffix(".tsv")
        values, cost = read_benchmark(path), costs.setdefault(rule, RuleCost())
        cost.jobs += 1
        cost.wall_s += values["s"]
        cost.longest_s = max(cost.longest_s, values["s"])
        cost.cpu_s += values["cpu_time"]
        cost.peak_rss_mb = max(cost.peak_rss_mb, values["max_rss"])
        end = path.stat().st_mtime
        cost.first_start = min(cost.first_start, end - values["s"])
        cost.last_end = max(cost.last_end, end)
    with open(outputs_table, newline="") as table:
        rows = list(csv.DictReader(table, delimiter="\t"))
    if rows and not {"output_file", "rule"} <= set(rows[0]):
        raise InputError(outputs_table, "not the output of snakemake --detailed-summary "
                                        "(columns output_file and rule)")
    for row in rows:
        if row["rule"] in costs:
            costs[row["rule"]].disk_bytes += disk_bytes(row["output_file"])
    return dict(sorted(costs.items(), key=lambda item: (item[1].first_start, item[0])))


def _duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _size(count):
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def markdown_table(costs):
    lines = ["| rule | jobs | wall | longest | elapsed | CPU | CPU/wall | peak RSS | disk |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for rule, cost in costs.items():
        ratio = cost.cpu_s / cost.wall_s if cost.wall_s else 0.0
        lines.append(f"| {rule} | {cost.jobs:,} | {_duration(cost.wall_s)} | "
                     f"{_duration(cost.longest_s)} | {_duration(cost.elapsed_s)} | "
                     f"{_duration(cost.cpu_s)} | {ratio:.2f} | "
                     f"{cost.peak_rss_mb:,.0f} MB | {_size(cost.disk_bytes)} |")
    everything = costs.values()
    elapsed = (max(c.last_end for c in everything) - min(c.first_start for c in everything)
               if costs else 0.0)
    lines.append(f"| all rules | {sum(c.jobs for c in everything):,} | "
                 f"{_duration(sum(c.wall_s for c in everything))} | | {_duration(elapsed)} | "
                 f"{_duration(sum(c.cpu_s for c in everything))} | | | "
                 f"{_size(sum(c.disk_bytes for c in everything))} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--benchmarks", required=True, metavar="DIR",
                        help="the run's benchmarks folder (RESULTS/benchmarks)")
    parser.add_argument("--outputs", required=True, metavar="TSV",
                        help="`snakemake --detailed-summary` of the run, saved to a file; "
                             "its paths are read relative to the current folder")
    parser.add_argument("--output", metavar="FILE",
                        help="also write the table here (default: stdout only)")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.benchmarks):
        raise InputError(args.benchmarks, "no such folder (benchmarks of a finished run)")
    table = markdown_table(rule_costs(args.benchmarks, args.outputs))
    print(table, end="")
    if args.output:
        write_text(args.output, table)


if __name__ == "__main__":
    main_guard(main)
