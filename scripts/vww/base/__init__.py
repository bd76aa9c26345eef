"""Shared basics: the portable arithmetic, TensorFlow's quiet start, the CLI prologue, atomic
files, session threads, recorded digests.
"""
