#!/usr/bin/env python3
"""Run a firmware on the frames, check its scores, and measure what it costs.

The host program runs as it is; a Cortex-M ELF runs in qemu-system-arm on its core's board
with -icount (vww/mcu/run.py: how instructions are counted). The firmware's int8 scores
must equal LiteRT's on every frame (make_mcu_frames.py's JSON), or this fails naming the
first that differs. Reported (--output JSON), for a Cortex-M: instructions per inference
(each frame's, and per op on the first), the counter check (the ticks of a loop of known
length against its instructions), the arena and the stack used, and flash and RAM split
into model / TFLM / application / C runtime from the linker map (vww/mcu/elf.py).

Example:
  python scripts/run_firmware.py --core cortex-m4f \\
      --firmware results/person_detection/mcu/cortex-m4f/firmware.elf \\
      --frames frames.bin --frames-json frames.json --output run.json
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

from vww.base.cli import InputError, cli_parser, main_guard, parse_logged_args
from vww.base.files import write_json
from vww.data.coco import load_json
from vww.mcu.build import CORES, MODEL_OBJECT, core
from vww.mcu.elf import memory_split, symbol_size
from vww.mcu.run import FirmwareError, instructions_per_tick, parse, qemu_version, run


def main(argv=None):
    parser = cli_parser(__doc__)
    parser.add_argument("--core", required=True, choices=sorted(CORES), help="its core")
    parser.add_argument("--firmware", required=True,
                        help="build_firmware.py's program or ELF (a Cortex-M's .map beside)")
    parser.add_argument("--frames", required=True, help="make_mcu_frames.py's pixels")
    parser.add_argument("--frames-json", required=True, help="make_mcu_frames.py's scores")
    parser.add_argument("--timeout-s", type=float, default=1800, help="for the whole run")
    parser.add_argument("--output", required=True, help="JSON report to write")
    args = parse_logged_args(parser, argv)
    target = core(args.core)
    expected = load_json(args.frames_json)
    firmware = Path(args.firmware).resolve()
    frames = Path(args.frames).resolve()
    count = len(expected["frames"])
    if frames.stat().st_size != count * expected["frame_bytes"]:
        raise InputError(frames, f"{frames.stat().st_size} bytes, not the {count} frames of "
                                 f"{expected['frame_bytes']} bytes of {args.frames_json}")
    category_count = len(expected["frames"][0]["litert"])
    try:
        # QEMU's semihosting opens the frames relative to its working directory.
        output = run(target, firmware, os.path.relpath(frames, frames.parent), count,
                     frames.parent, args.timeout_s)
        report = parse(output, category_count)
    except (FirmwareError, subprocess.TimeoutExpired) as err:
        raise InputError(firmware, f"did not run to its end on {args.core}: {err}") from err

    scored = []
    for want, got in zip(expected["frames"], report["frames"]):
        scored.append({"name": want["name"], "scores": got["scores"],
                       "litert": want["litert"], "decision": got["decision"],
                       "ticks": got["ticks"]})
    differ = [frame for frame in scored if frame["scores"] != frame["litert"]]
    result = {
        "core": target.name,
        "title": target.title,
        "frames": scored,
        "frames_scored": len(scored),
        "scores_equal_litert": not differ and len(scored) == count,
        "arena_bytes_used": report["arena_used"],
        "arena_bytes": report["arena_size"],
    }
    if not target.host:
        ratio = instructions_per_tick(target)
        loop = report["known_loop"]
        counted = loop["ticks"] * ratio
        per_frame = [round(frame["ticks"] * ratio) for frame in scored]
        for frame, instructions in zip(scored, per_frame):
            frame["instructions"] = instructions
            del frame["ticks"]
        map_text = firmware.with_suffix(".map").read_text()
        result.update({
            "emulator": {"qemu": qemu_version(), "machine": target.machine,
                         "cpu": target.runs_as or target.title.split(" (")[0],
                         "icount_shift": 0, "board_clock_hz": target.board_clock_hz,
                         "instructions_per_tick": ratio},
            "counter_check": {"loop_instructions": loop["instructions"],
                              "counted": round(counted),
                              "relative_error": abs(counted - loop["instructions"]) /
                              loop["instructions"],
                              "resolution_instructions": ratio},
            "instructions_per_inference": {"min": min(per_frame), "max": max(per_frame)},
            "instructions_per_op": {name: {"count": op["count"],
                                           "instructions": round(op["ticks"] * ratio)}
                                    for name, op in sorted(report["ops"].items())},
            "stack_bytes_used": report["stack_used"],
            "memory": memory_split(map_text, MODEL_OBJECT),
            "arena_bytes_reserved": symbol_size(map_text, "tensor_arenaE"),
        })
    write_json(args.output, result)
    logging.info("%s: %d frames, scores equal LiteRT's: %s", args.core, len(scored),
                 result["scores_equal_litert"])
    if not result["scores_equal_litert"]:
        sys.exit(f"error: {args.firmware}: scores differ from LiteRT's on {len(differ)} of "
                 f"{count} frames (first: {differ[0] if differ else 'frames missing'})")


if __name__ == "__main__":
    main_guard(main)
