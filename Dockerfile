# The forecaster service on CPU:
#   docker build -t forecaster .
#   docker run -p 3000:3000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 forecaster
#   docker run -p 3000:3000 -v $PWD/model:/model -e FORECASTER_MODEL_DIR=/model forecaster
# (`python -m pipelines.serve --export model` writes that folder from the registry: an image
# or a container that needs no tracking server.)
# Exposure: the server listens on 0.0.0.0 inside the container (else the published port
# reaches nothing). Publish it on the host's loopback, `-p 127.0.0.1:3000:3000`, behind a reverse
# proxy that terminates TLS, and require a bearer token on the forecast endpoints, /metadata and
# /metrics (the /livez and /readyz probes stay open):
#   docker run -p 127.0.0.1:3000:3000 -v $PWD/model:/model -e FORECASTER_MODEL_DIR=/model \
#     -v $PWD/token:/run/secrets/forecaster-token:ro \
#     -e FORECASTER_API_TOKEN_FILE=/run/secrets/forecaster-token forecaster
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BENTOML_HOME=/home/app/bentoml \
    MLFLOW_TRACKING_URI=sqlite:////data/mlflow.db \
    FORECASTER_MODEL_URI=models:/forecaster-rnn@champion \
    FORECASTER_WORKERS=cpu_count
# (one server process per CPU the container may use: /forecast_batch scales with them.
# BentoML reads the cgroup quota, so `docker run --cpus 2` gives 2; with no limit it is every
# host core, each loading the model: set --cpus or FORECASTER_WORKERS=N on a large host)

# curl for the HEALTHCHECK
RUN apt-get update && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# CPU torch first so that the project's `torch>=2.4` keeps it. GPU users: install the CUDA
# build instead, e.g. --index-url https://download.pytorch.org/whl/cu128
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY forecaster ./forecaster
COPY pipelines ./pipelines
COPY conf ./conf
COPY bentofile.yaml ./
RUN pip install .

RUN useradd --create-home --uid 1000 app && mkdir -p /data && chown app /data
USER app

EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS http://127.0.0.1:3000/readyz || exit 1
# exec form: SIGTERM reaches BentoML, which finishes in-flight requests before exiting
CMD ["python", "-m", "pipelines.serve", "--host", "0.0.0.0", "--port", "3000"]
