"""Shared code of the person-detection workflow: one module per concern.

The CLIs in scripts/ import this package; they run with or without Snakemake. Importing
it caps the instruction sets TensorFlow computes with (vww.base.arithmetic), before any op
runs, so every CLI gives the same bytes on any x86-64 CPU, and keeps TensorFlow's
start-up messages out of the console (vww.base.quiet).
"""

from vww.base import arithmetic, quiet

arithmetic.apply()
quiet.apply()
