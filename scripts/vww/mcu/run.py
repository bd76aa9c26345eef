"""Running a firmware (scripts/mcu/person_detection_app.cc) and reading what it prints.

On the host it runs as a program. A Cortex-M firmware runs in qemu-system-arm on the
MPS2/MPS3 board of its core with semihosting (stdout and the frames file are the host's)
and `-icount shift=0`: QEMU's virtual clock then advances exactly 1 ns per instruction
executed, whatever the host's speed, so SysTick, clocked by the board's processor clock
(SYSCLK), ticks once every 1e9 / SYSCLK instructions (40 on a 25 MHz MPS2). The firmware
counts the ticks of each Invoke() and of each op; the instructions are ticks times that
ratio, to within one tick. The firmware checks the ratio on a loop of known length.
QEMU models no pipeline or memory timing: instructions, not cycles.
"""

import re
import subprocess

ICOUNT_SHIFT = 0  # 2**shift ns of virtual time per instruction


def instructions_per_tick(target):
    return 1e9 / target.board_clock_hz / 2 ** ICOUNT_SHIFT


def command(target, firmware, frames, count):
    """The command that runs `count` frames of the file `frames` through a firmware (paths
    as the firmware sees them: relative to the working directory under QEMU)."""
    if target.host:
        return [str(firmware), str(frames), str(count)]
    return ["qemu-system-arm", "-M", target.machine, "-display", "none", "-serial", "null",
            "-monitor", "none", "-icount", f"shift={ICOUNT_SHIFT},sleep=off",
            "-semihosting-config",
            f"enable=on,target=native,arg=firmware,arg={frames},arg={count}",
            "-kernel", str(firmware)]


class FirmwareError(RuntimeError):
    """The firmware failed, or printed something other than its report."""


def run(target, firmware, frames, count, cwd, timeout_s):
    """stdout of one run; FirmwareError if it did not reach its end."""
    done = subprocess.run(command(target, firmware, frames, count), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or not done.stdout.rstrip().endswith("done"):
        raise FirmwareError(f"exit status {done.returncode}; output: "
                            f"{(done.stdout + done.stderr).strip()[-2000:]}")
    return done.stdout


def parse(output, category_count):
    """The firmware's report: {"frames": [{"scores", "decision", "ticks"}], "ops":
    {name: {"count", "ticks"}}, "arena_used", "arena_size", "stack_used",
    "known_loop": {"instructions", "ticks"}}."""
    report = {"frames": [], "ops": {}}
    for line in output.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "error:":
            raise FirmwareError(line)
        if fields[0] == "frame" and len(fields) == 4 + category_count:
            report["frames"].append({"scores": [int(v) for v in fields[2:2 + category_count]],
                                     "decision": fields[-2], "ticks": int(fields[-1])})
        elif fields[0] == "op" and len(fields) == 4:
            report["ops"][fields[1]] = {"count": int(fields[2]), "ticks": int(fields[3])}
        elif fields[0] == "arena_used" and len(fields) == 4:
            report["arena_used"], report["arena_size"] = int(fields[1]), int(fields[3])
        elif fields[0] == "stack_used" and len(fields) == 2:
            report["stack_used"] = int(fields[1])
        elif fields[0] == "known_loop" and len(fields) == 3:
            report["known_loop"] = {"instructions": int(fields[1]), "ticks": int(fields[2])}
    missing = {"arena_used", "stack_used", "known_loop"} - set(report)
    if missing or not report["frames"]:
        raise FirmwareError(f"no {', '.join(sorted(missing)) or 'frames'} in its output: "
                            f"{output[-2000:]}")
    return report


def qemu_version():
    first = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True,
                           check=True).stdout.splitlines()[0]
    match = re.search(r"version (\S+)", first)
    return match[1] if match else first
