"""MLflow: the store, run artifacts, the pyfunc model, registry gating and sweep parent runs."""
