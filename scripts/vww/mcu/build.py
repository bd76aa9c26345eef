"""Building TFLM applications: the cores, the TFLM sources our model needs, the compiles.

Only what the person-detection model needs is compiled, not TFLM's whole library: the
framework (interpreter, allocator, planner, flatbuffer parsing) and the kernels of its five
ops (CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, RESHAPE, SOFTMAX), as TFLM's Makefile
would build them for the core (its cortex_m_generic target's flags; CMSIS-NN's kernels
where TFLM has them, OPTIMIZED_KERNEL_DIR=cmsis_nn), with the Makefile's optimization
levels: -Os for the framework, -O2 for kernels and CMSIS-NN. The paths are those of TFLM's
own tree with its downloads (vww.mcu.sources).

Reproducible: each folder compiled from is mapped to a fixed name (-ffile-prefix-map), so
the paths compiled into the code (__FILE__ in TFLM's error messages) do not depend on where
the clone, the results or the build are; two clean builds give the same library and ELF.
"""

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vww.mcu.sources import DOWNLOADS

APP_DIR = Path(__file__).resolve().parents[2] / "mcu"
MODEL_OBJECT = "model.o"  # the model's C file, compiled: its name in the linker map


@dataclass(frozen=True)
class Core:
    """A build target: compiler flags, and for a Cortex-M the QEMU board that runs it."""

    name: str
    title: str
    flags: tuple  # machine flags, for compiling and linking
    cmsis_nn: bool
    machine: str = ""  # QEMU machine; "" for the host
    runs_as: str = ""  # the CPU of that machine, when it is not this core
    board_clock_hz: int = 0  # the machine's SysTick processor clock
    memory: dict = field(default_factory=dict)  # linker regions: name -> (origin, length)

    @property
    def host(self):
        return not self.machine


MIB = 1 << 20
# The MPS2/MPS3 FPGA images QEMU models; code and data in their SRAMs (memory maps from
# QEMU's hw/arm/mps2.c and mps2-tz.c). The boards' SYSCLK clocks SysTick.
MPS2 = {"code": (0x00000000, 4 * MIB), "ram": (0x20000000, 4 * MIB)}
# AN505 and AN547 start in the secure state, with the vector table at the secure alias
# of their first code memory; AN547's 512 KiB ITCM holds the vectors, its SRAM the code
# and its DTCM the data.
AN505 = {"code": (0x10000000, 4 * MIB), "ram": (0x38000000, 2 * MIB)}
AN547 = {"code": (0x10000000, 512 << 10), "code2": (0x11000000, 2 * MIB),
         "ram": (0x30000000, 512 << 10)}

CORES = {
    "host": Core("host", "x86-64 host (g++)", (), False),
    # QEMU has no Cortex-M0+ board that holds a 300 KB model (micro:bit: 256 KB flash), so
    # the ARMv6-M code runs on the M3 of AN385, which executes the same instructions.
    "cortex-m0plus": Core("cortex-m0plus", "Cortex-M0+", (
        "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"), True,
        "mps2-an385", "Cortex-M3", 25_000_000, MPS2),
    "cortex-m4f": Core("cortex-m4f", "Cortex-M4F", (
        "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"), True,
        "mps2-an386", "", 25_000_000, MPS2),
    "cortex-m7": Core("cortex-m7", "Cortex-M7", (
        "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"), True,
        "mps2-an500", "", 25_000_000, MPS2),
    "cortex-m33": Core("cortex-m33", "Cortex-M33", (
        "-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"), True,
        "mps2-an505", "", 20_000_000, AN505),
    "cortex-m55": Core("cortex-m55", "Cortex-M55 (Helium)", (
        "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), True,
        "mps3-an547", "", 32_000_000, AN547),
}

# The kernels of the model's ops and what they share; with CMSIS-NN, TFLM's cmsis_nn/
# versions replace those it has.
KERNELS = ("conv", "conv_common", "depthwise_conv", "depthwise_conv_common", "pooling",
           "pooling_common", "reshape", "reshape_common", "softmax", "softmax_common",
           "kernel_util", "micro_tensor_utils")
CMSIS_NN_KERNELS = ("conv", "depthwise_conv", "pooling", "softmax")
# CMSIS-NN's source folders those kernels call into (Helium's depthwise conv transposes).
CMSIS_NN_FOLDERS = ("ConvolutionFunctions", "NNSupportFunctions", "PoolingFunctions",
                    "SoftmaxFunctions", "TransposeFunctions")
# Framework files only TFLM's tests, recording tools or other platforms use.
NOT_FRAMEWORK = {"fake_micro_context.cc", "mock_micro_graph.cc", "test_helpers.cc",
                 "test_helper_custom_ops.cc", "recording_micro_allocator.cc",
                 "system_setup.cc", "micro_time.cc", "micro_profiler.cc", "hexdump.cc"}
# TFLite files outside micro/ that TFLM builds (its sources.inc), minus the dynamic array.
TFLITE_SOURCES = (
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc",
    "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/runtime_shape.cc",
    "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/tensor_utils.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
)

# TFLM's Makefile: COMMON_FLAGS and CXXFLAGS, and cortex_m_generic's PLATFORM_FLAGS.
COMMON_FLAGS = ("-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
                "-fdata-sections", "-fmessage-length=0", "-DTF_LITE_STATIC_MEMORY",
                "-DTF_LITE_DISABLE_X86_NEON", "-Wall", "-Wno-unused-parameter")
CXX_ONLY = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_ONLY = ("-std=c17",)
CORTEX_M_FLAGS = ("-DTF_LITE_MCU_DEBUG_LOG", "-mlittle-endian", "-fomit-frame-pointer",
                  "-funsigned-char", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0")
FRAMEWORK_OPTIMIZATION = "-Os"
KERNEL_OPTIMIZATION = "-O2"


def core(name):
    try:
        return CORES[name]
    except KeyError:
        raise ValueError(f"unknown core {name!r}; known: {', '.join(sorted(CORES))}") from None


def compilers(target):
    """(C compiler, C++ compiler, tool prefix) for a core."""
    if target.host:
        return "gcc", "g++", ""
    return "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-"


def include_dirs(tflm):
    downloads = Path(tflm) / DOWNLOADS
    return [Path(tflm), downloads, downloads / "gemmlowp", downloads / "flatbuffers/include",
            downloads / "ruy", downloads / "cmsis_nn", downloads / "cmsis_nn/Include"]


def library_sources(tflm, target):
    """[(source, optimization)] of the TFLM library for a core, sorted by path."""
    tflm = Path(tflm)
    micro = tflm / "tensorflow/lite/micro"
    framework = [path for folder in ("", "arena_allocator", "memory_planner", "tflite_bridge")
                 for path in (micro / folder).glob("*.cc")
                 if not path.name.endswith("_test.cc") and path.name not in NOT_FRAMEWORK]
    framework += [tflm / name for name in TFLITE_SOURCES]
    kernels = []
    for name in KERNELS:
        optimized = micro / "kernels/cmsis_nn" / f"{name}.cc"
        use_optimized = target.cmsis_nn and name in CMSIS_NN_KERNELS
        kernels.append(optimized if use_optimized else micro / "kernels" / f"{name}.cc")
    if target.cmsis_nn:
        nn_source = tflm / DOWNLOADS / "cmsis_nn/Source"
        kernels += [path for folder in CMSIS_NN_FOLDERS
                    for path in (nn_source / folder).glob("*.c")
                    if not path.name.endswith(("_f16.c", "_f32.c"))]
    sources = [(path, FRAMEWORK_OPTIMIZATION) for path in framework]
    sources += [(path, KERNEL_OPTIMIZATION) for path in kernels]
    missing = [str(path) for path, _ in sources if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"not a TFLM tree with its downloads: {missing[0]} missing")
    return sorted(sources)


def prefix_maps(**folders):
    """-ffile-prefix-map of each folder (absolute, as the compiles name it) to its name."""
    return tuple(f"-ffile-prefix-map={Path(path).resolve()}={name}"
                 for name, path in folders.items())


def compile_command(target, source, obj, optimization, includes, maps, defines=()):
    """The compiler's command line; `maps`: prefix_maps of the folders compiled from."""
    cc, cxx, _ = compilers(target)
    is_c = Path(source).suffix == ".c"
    flags = [*target.flags, *COMMON_FLAGS, *(C_ONLY if is_c else CXX_ONLY)]
    if not target.host:
        flags += CORTEX_M_FLAGS
        if target.cmsis_nn:
            flags.append("-DCMSIS_NN")
    return [cc if is_c else cxx, *flags, optimization, *maps, *defines,
            *(f"-I{path}" for path in includes), "-c", str(source), "-o", str(obj)]


def object_name(source, root):
    """A unique object file name for a source path under root: folders joined by '__'."""
    relative = Path(source).resolve().relative_to(Path(root).resolve())
    return "__".join(relative.parts) + ".o"


def run_commands(commands, jobs):
    """Run compile commands `jobs` at a time; raise CalledProcessError with the output of
    the first that fails."""
    def run(command):
        return subprocess.run(command, capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for command, done in zip(commands, pool.map(run, commands)):
            if done.returncode != 0:
                raise subprocess.CalledProcessError(done.returncode, shlex.join(command),
                                                    done.stdout, done.stderr)


def build_library(tflm, target, build_dir, output, jobs):
    """Compile TFLM's sources for a core into the static library `output`; returns the
    number of sources compiled."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    tflm = Path(tflm).resolve()  # absolute: the prefix map sees every path
    includes = include_dirs(tflm)
    maps = prefix_maps(tflm=tflm)
    commands, objects = [], []
    for source, optimization in library_sources(tflm, target):
        obj = build_dir / object_name(source, tflm)
        commands.append(compile_command(target, source, obj, optimization, includes, maps))
        objects.append(obj)
    run_commands(commands, jobs)
    _, _, prefix = compilers(target)
    Path(output).unlink(missing_ok=True)
    # D: no timestamps, uids or modes in the archive, so the same objects give its bytes.
    subprocess.run([f"{prefix}ar", "rcsD", str(output), *map(str, objects)], check=True)
    return len(objects)


def linker_script(target):
    """The GNU ld script of a board: vectors and code in its code memory, data, stack and
    heap in its RAM. .data is loaded where it runs (QEMU loads the ELF's segments)."""
    regions = "\n".join(f"  {name} (rwx) : ORIGIN = {origin:#010x}, LENGTH = {length:#x}"
                        for name, (origin, length) in target.memory.items())
    text_region = "code2" if "code2" in target.memory else "code"
    return f"""\
/* Generated by vww/mcu/build.py for {target.machine} ({target.title}). */
ENTRY(Reset_Handler)
MEMORY
{{
{regions}
}}
STACK_SIZE = 0x10000;
HEAP_SIZE = 0x8000;
SECTIONS
{{
  .vectors : {{ KEEP(*(.vectors)) }} > code
  .text : {{
    *(.text*)
    KEEP(*(.init)) KEEP(*(.fini))
    *(.rodata*)
    . = ALIGN(4);
    __preinit_array_start = .; KEEP(*(.preinit_array)) __preinit_array_end = .;
    __init_array_start = .; KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array))
    __init_array_end = .;
    __fini_array_start = .; KEEP(*(.fini_array)) __fini_array_end = .;
  }} > {text_region}
  .ARM.extab : {{ *(.ARM.extab*) }} > {text_region}
  .ARM.exidx : {{ __exidx_start = .; *(.ARM.exidx*) __exidx_end = .; }} > {text_region}
  .data : {{ . = ALIGN(8); *(.data*) . = ALIGN(8); }} > ram
  .bss (NOLOAD) : {{
    . = ALIGN(8); __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(8); __bss_end__ = .;
  }} > ram
  /* newlib's heap (the test harness's file buffers) below the stack: its sbrk stops at
     the stack pointer. */
  .heap (NOLOAD) : {{ . = ALIGN(8); end = .; . += HEAP_SIZE; }} > ram
  .stack (NOLOAD) : {{
    . = ALIGN(8); __stack_limit = .; . += STACK_SIZE; . = ALIGN(8); __stack_top = .;
  }} > ram
}}
"""


def binding_header(c_file, array_name):
    """model_binding.h: the names of one model's generated files, for the application."""
    return (
        "// Generated by scripts/build_firmware.py: the model the application runs.\n"
        f'#include "{c_file}.h"\n#include "{c_file}_settings.h"\n'
        f"#define MODEL_SETTINGS_NAMESPACE {c_file}\n"
        f"#define MODEL_ARRAY {array_name}\n"
        f"#define MODEL_OPS {c_file.upper()}_OPS\n"
    )


def build_firmware(tflm, target, library, c_dir, c_file, array_name, build_dir, output,
                   jobs):
    """Compile the application and the model's C files for a core and link them with the
    TFLM library into `output` (an ELF; a host executable for the host)."""
    build_dir, c_dir, tflm = (Path(path).resolve() for path in (build_dir, c_dir, tflm))
    build_dir.mkdir(parents=True, exist_ok=True)
    (build_dir / "model_binding.h").write_text(binding_header(c_file, array_name))
    includes = [build_dir, c_dir, APP_DIR, *include_dirs(tflm)]
    maps = prefix_maps(tflm=tflm, app=APP_DIR, model=c_dir, build=build_dir)
    platform = "platform_host.cc" if target.host else "platform_cortex_m.c"
    sources = [APP_DIR / "person_detection_app.cc", APP_DIR / platform,
               Path(c_dir) / f"{c_file}.cc"]
    objects = [build_dir / f"{Path(source).name}.o" for source in sources[:-1]]
    objects.append(build_dir / MODEL_OBJECT)
    run_commands([compile_command(target, source, obj, KERNEL_OPTIMIZATION, includes, maps)
                  for source, obj in zip(sources, objects)], jobs)
    _, cxx, _ = compilers(target)
    link = [cxx, *target.flags, "-Wl,--gc-sections", "-o", str(output), *map(str, objects),
            str(library)]
    if target.host:
        link += ["-lm"]
    else:
        script = build_dir / "board.ld"
        script.write_text(linker_script(target))
        link += [f"-T{script}", "-nostartfiles", "--specs=rdimon.specs",
                 f"-Wl,-Map={build_dir / 'firmware.map'}", "-lm"]
    subprocess.run(link, check=True, capture_output=True, text=True)
