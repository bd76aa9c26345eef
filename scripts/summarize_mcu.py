#!/usr/bin/env python3
"""Summarize a model's microcontroller builds: per core, and against a list of parts.

From run_firmware.py's reports (the host's and each core's): per core, flash (model /
TFLM / application / C runtime) and RAM (static data and bss, of which the tensor arena,
plus the stack measured), instructions per inference counted in QEMU, and an ESTIMATED
latency at a clock: instructions x an assumed cycles-per-instruction range (--parts-json's
cycles_per_instruction; QEMU counts instructions, not cycles) / clock. Per part (a core,
a clock, its flash and RAM, from its datasheet): whether the firmware fits, and if not by
how many KiB. Published latencies of boards running this model size go beside, as they are.
The firmware's figures include its test harness (printf, file reading, a frame buffer).

Example:
  python scripts/summarize_mcu.py --runs results/person_detection/mcu/*/run.json \\
      --parts-json "$(cat parts.json)" --output results/person_detection/mcu/mcu.json
  (writes mcu.json and mcu.md, the tables)
"""

import json
import logging
import math
from pathlib import Path

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json, write_text
from vww.data.coco import load_json

KIB = 1024


def kib(value):
    return round(value / KIB, 1)


def core_row(run):
    memory = run["memory"]
    static_ram = memory["total"]["ram"]
    return {
        "core": run["core"],
        "title": run["title"],
        "emulated_as": f"{run['emulator']['machine']} ({run['emulator']['cpu']})",
        "flash_bytes": {name: memory[name]["flash"] for name in memory},
        "ram_bytes": {
            "static": static_ram,
            "arena_reserved": run["arena_bytes_reserved"],
            "arena_used": run["arena_bytes_used"],
            "stack_measured": run["stack_bytes_used"],
            "total": static_ram + run["stack_bytes_used"],
            "by_part": {name: memory[name]["ram"] for name in memory},
        },
        "instructions_per_inference": run["instructions_per_inference"],
        "instructions_per_op": run["instructions_per_op"],
        "counter_check": run["counter_check"],
        "scores_equal_litert": run["scores_equal_litert"],
        "frames_scored": run["frames_scored"],
    }


def estimate_ms(instructions, cpi, clock_mhz):
    """[low, high] ESTIMATED milliseconds of an inference."""
    low, high = cpi
    return [round(instructions * low / (clock_mhz * 1e3), 1),
            round(instructions * high / (clock_mhz * 1e3), 1)]


def part_rows(rows, parts, cpi):
    by_core = {row["core"]: row for row in rows}
    results = []
    for name, part in sorted(parts.items()):
        row = by_core.get(part["core"])
        entry = {"part": name, **part}
        if row is None:
            entry["fits"] = None
            entry["why"] = f"no build for core {part['core']}"
            results.append(entry)
            continue
        flash, ram = row["flash_bytes"]["total"], row["ram_bytes"]["total"]
        short_flash = flash - part["flash_kib"] * KIB
        short_ram = ram - part["ram_kib"] * KIB
        entry["fits"] = short_flash <= 0 and short_ram <= 0
        entry["short_by_kib"] = {"flash": max(0, math.ceil(short_flash / KIB)),
                                 "ram": max(0, math.ceil(short_ram / KIB))}
        entry["estimated_ms"] = estimate_ms(row["instructions_per_inference"]["max"],
                                            cpi[part["core"]], part["clock_mhz"])
        results.append(entry)
    return results


def fit_text(part):
    if part["fits"] is None:
        return part["why"]
    if part["fits"]:
        return "fits"
    short = part["short_by_kib"]
    return "does not fit: " + ", ".join(f"{what} short by {short[what]} KiB"
                                        for what in ("flash", "ram") if short[what])


def markdown(model, rows, parts, published, host):
    lines = [f"# {model} on microcontrollers", "",
             f"Host build (g++): int8 scores equal LiteRT's on {host['frames_scored']} frames: "
             f"{'yes' if host['scores_equal_litert'] else 'NO'}.", "",
             "| core | emulated on | scores = LiteRT | flash KiB: model + TFLM + app + C "
             "runtime = total | RAM KiB: static (arena) + stack = total | instructions per "
             "inference | counter check error |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        flash, ram = row["flash_bytes"], row["ram_bytes"]
        lines.append(
            f"| {row['title']} | {row['emulated_as']} | "
            f"{'yes' if row['scores_equal_litert'] else 'NO'} ({row['frames_scored']}) | "
            f"{kib(flash['model'])} + {kib(flash['tflm'])} + {kib(flash['application'])} + "
            f"{kib(flash['c_runtime'])} = {kib(flash['total'])} | "
            f"{kib(ram['static'])} ({kib(ram['arena_reserved'])}) + "
            f"{kib(ram['stack_measured'])} = {kib(ram['total'])} | "
            f"{row['instructions_per_inference']['max']:,} | "
            f"{row['counter_check']['relative_error']:.1e} |")
    lines += ["", "ESTIMATED latency = instructions x cycles per instruction (an assumed "
              "range) / clock; QEMU counts instructions, not cycles.", "",
              "| part | core | clock MHz | flash KiB | RAM KiB | fits | ESTIMATED ms | source |",
              "|---|---|---|---|---|---|---|---|"]
    for part in parts:
        estimate = ("" if part["fits"] is None else
                    f"{part['estimated_ms'][0]}-{part['estimated_ms'][1]}")
        lines.append(f"| {part['part']} | {part['core']} | {part['clock_mhz']} | "
                     f"{part['flash_kib']} | {part['ram_kib']} | {fit_text(part)} | "
                     f"{estimate} | {part['source']} |")
    lines += ["", "Published latencies of this model size (MobileNet v1 0.25, 96x96; not "
              "this build; as published):", "",
              "| board | core | clock MHz | ms | engine | source |", "|---|---|---|---|---|---|"]
    for board, entry in sorted(published.items()):
        lines.append(f"| {board} | {entry['core']} | {entry['clock_mhz']} | {entry['ms']} | "
                     f"{entry['engine']} | {entry['source']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--model", required=True, help="the model's name, for the title")
    parser.add_argument("--runs", nargs="+", required=True, help="run_firmware.py's reports")
    parser.add_argument("--parts-json", required=True,
                        help='JSON: {"parts": {name: {core, clock_mhz, flash_kib, ram_kib, '
                             'source}}, "cycles_per_instruction": {core: [low, high]}, '
                             '"published": {board: {core, clock_mhz, ms, engine, source}}}')
    parser.add_argument("--output", required=True, help="JSON to write; the table to .md")
    args = parse_logged_args(parser, argv)
    try:
        settings = json.loads(args.parts_json)
        parts, cpi = settings["parts"], settings["cycles_per_instruction"]
        published = settings.get("published", {})
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--parts-json: {err}")
    runs = {path: load_json(path) for path in args.runs}
    hosts = [run for run in runs.values() if run["core"] == "host"]
    if len(hosts) != 1:
        raise InputError(args.runs[0], f"{len(hosts)} host runs among --runs, not 1")
    rows = sorted((core_row(run) for run in runs.values() if run["core"] != "host"),
                  key=lambda row: row["core"])
    for row in rows:
        if row["core"] not in cpi:
            parser.error(f"--parts-json: no cycles_per_instruction for {row['core']}")
        row["cycles_per_instruction_assumed"] = cpi[row["core"]]
    part_list = part_rows(rows, parts, cpi)
    summary = {
        "model": args.model,
        "host": {"frames_scored": hosts[0]["frames_scored"],
                 "scores_equal_litert": hosts[0]["scores_equal_litert"],
                 "arena_bytes_used": hosts[0]["arena_bytes_used"]},
        "cores": rows,
        "parts": part_list,
        "published_latencies": published,
        "estimates": "estimated_ms = instructions per inference x cycles_per_instruction_"
                     "assumed / clock: an estimate, not a measurement",
    }
    write_json(args.output, summary)
    write_text(Path(args.output).with_suffix(".md"),
               markdown(args.model, rows, part_list, published, hosts[0]))
    logging.info("%s: %d cores, %d parts", args.model, len(rows), len(part_list))


if __name__ == "__main__":
    main_guard(main)
