"""The microcontroller stage: TFLM's sources, the build per core, the ELF's memory split, test
frames, runs in QEMU.
"""
