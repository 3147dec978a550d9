"""Tests of the runnable job specs in examples/."""
