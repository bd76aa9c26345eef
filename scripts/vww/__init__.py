"""Shared code of the person-detection workflow: one module per concern.

The CLIs in scripts/ import this package; they run with or without Snakemake.
"""
