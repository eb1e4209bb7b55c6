"""The entry points: ``python -m pipelines.train | predict | evaluate``."""

from forecaster.runtime import prepare_openmp

prepare_openmp()  # before any entry point loads torch: short spins for waiting threads
