"""Flash and RAM of a firmware, split into model / TFLM / application / C runtime.

Read from the GNU ld map file the link writes: every input section the link kept (after
--gc-sections), its size, and the object it came from. An input section is

  model        from the model's C file (the .tflite array);
  tflm         from the TFLM library (framework, kernels, CMSIS-NN), or TFLM code that
               the application's object instantiates (a section of a tflite:: symbol:
               the op resolver and interpreter templates);
  application  the rest of the application and the board code (startup, counter), the
               tensor arena, and the test harness's frame buffer;
  c_runtime    newlib, libgcc, libstdc++ (printf and file I/O are the harness's).

Flash holds .vectors, .text (code), .rodata (constants) and .data's initial values; RAM
holds .data and .bss (the tensor arena is in .bss), plus the stack, measured by the
firmware (painted, then scanned). newlib's heap serves only the harness's file I/O and is
not counted.
"""

import re
from collections import defaultdict

CATEGORIES = ("model", "tflm", "application", "c_runtime")
FLASH_SECTIONS = {".vectors", ".text", ".ARM.exidx", ".ARM.extab"}
RAM_SECTIONS = {".data", ".bss"}

_OUTPUT = re.compile(r"^(\.[\w.]+)(?:\s+0x[0-9a-f]+\s+0x[0-9a-f]+)?\s*$")
_INPUT_FULL = re.compile(
    r"^ (\*fill\*|[.\w][^\s]*)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)(?:\s+(\S.*?))?\s*$")
_INPUT_NAME = re.compile(r"^ ([.\w][^\s]*)$")
_INPUT_REST = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")


def input_sections(map_text):
    """[(output section, input section, address, bytes, object)] of the sections the link
    kept. Merged string sections are listed overlapping: see memory_split."""
    text = map_text.split("Linker script and memory map", 1)[-1]
    sections, output, pending = [], None, None
    for line in text.splitlines():
        match = _OUTPUT.match(line)
        if match:
            output, pending = match[1], None
            continue
        if output is None:
            continue
        match = _INPUT_FULL.match(line)
        if match:
            pending = None
            sections.append((output, match[1], int(match[2], 16), int(match[3], 16),
                             match[4] or ""))
            continue
        match = _INPUT_NAME.match(line)
        if match:
            pending = match[1]
            continue
        match = _INPUT_REST.match(line)
        if match and pending:
            sections.append((output, pending, int(match[1], 16), int(match[2], 16), match[3]))
            pending = None
    return sections


def category(section, source, model_object):
    if source.endswith("/" + model_object):
        return "model"
    if "libtflm.a(" in source or re.search(r"_ZN?K?6tflite", section):
        return "tflm"
    if "/lib/gcc/" in source or "arm-none-eabi/lib" in source:
        return "c_runtime"
    return "application"


def kind(output, section):
    """code, constants, data or bss of an input section."""
    if output == ".data":
        return "data"
    if output == ".bss":
        return "bss"
    return "constants" if section.startswith(".rodata") else "code"


def memory_split(map_text, model_object):
    """{category: {code, constants, data, bss, flash, ram}} in bytes, and the totals under
    "total". Each byte of an output section counts once, for the first input section that
    covers it (the linker lists merged strings overlapping); padding between sections
    counts for the section before it."""
    split = defaultdict(lambda: defaultdict(int))
    by_output = defaultdict(list)
    for output, section, address, size, source in input_sections(map_text):
        if output in FLASH_SECTIONS | RAM_SECTIONS:
            by_output[output].append((address, size, section, source))
    for output, entries in by_output.items():
        covered_end, owner, owner_kind = None, "application", None
        for address, size, section, source in sorted(entries, key=lambda e: e[0]):
            if covered_end is not None and address > covered_end:  # padding
                split[owner][owner_kind] += address - covered_end
                covered_end = address
            start = address if covered_end is None else max(address, covered_end)
            new_bytes = max(0, address + size - start)
            if section != "*fill*":
                owner = category(section, source, model_object)
                owner_kind = kind(output, section)
            elif owner_kind is None:
                owner_kind = kind(output, section)
            split[owner][owner_kind] += new_bytes
            covered_end = max(covered_end or 0, address + size)
    result = {}
    for name in (*CATEGORIES, "total"):
        members = CATEGORIES if name == "total" else (name,)
        parts = {k: sum(split[c][k] for c in members)
                 for k in ("code", "constants", "data", "bss")}
        parts["flash"] = parts["code"] + parts["constants"] + parts["data"]
        parts["ram"] = parts["data"] + parts["bss"]
        result[name] = parts
    return result


def symbol_size(map_text, section_suffix):
    """Bytes of the kept input section whose name ends with `section_suffix` (0 if none)."""
    return sum(size for _, section, _, size, _ in input_sections(map_text)
               if section.endswith(section_suffix))
