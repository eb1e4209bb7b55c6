"""Serve the registered model over HTTP, or export it for images without a tracking store.

    python -m pipelines.serve                      # = bentoml serve (repository root), port 3000
    python -m pipelines.serve --port 8080 --host 127.0.0.1   # any `bentoml serve` option
    python -m pipelines.serve --export DIR         # the model as a folder: FORECASTER_MODEL_DIR=DIR
    python -m pipelines.serve --export-bento       # into the BentoML model store, for `bentoml build`

The model is FORECASTER_MODEL_URI (default models:/forecaster-rnn@champion) in the store
MLFLOW_TRACKING_URI (default sqlite:///mlflow.db in the working folder); see
forecaster/serving/service.py for the other settings.
"""

from __future__ import annotations

import argparse
import os
import sys

SERVICE = "forecaster.serving.service:ForecastService"
BENTO_MODEL_NAME = "forecaster-rnn"


def export_bento() -> str:
    """Copy the registered model into the BentoML model store; returns its tag."""
    import bentoml

    from forecaster.serving import source

    forecaster, info, example = source.load()
    labels = {k: str(v) for k, v in (("version", info.version), ("alias", info.alias),
                                      ("run_id", info.run_id)) if v}
    with bentoml.models.create(BENTO_MODEL_NAME, labels=labels,
                               metadata={"uri": info.uri}) as model:
        source.export(forecaster, info, model.path, example)
    return str(model.tag)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--export", metavar="DIR", help="write the model folder to DIR and exit")
    parser.add_argument("--export-bento", action="store_true",
                        help="copy the model into the BentoML model store and exit")
    args, rest = parser.parse_known_args(argv)
    if args.export or args.export_bento:
        from forecaster.serving import source
        from forecaster.serving.model import ModelLoadError

        try:
            if args.export:
                forecaster, info, example = source.load()
                path = source.export(forecaster, info, args.export, example)
                print(f"exported to {path}; serve it with FORECASTER_MODEL_DIR={path}")
            else:
                tag = export_bento()
                print(f"saved BentoML model {tag}; build a Bento with "
                      f"FORECASTER_BENTO_MODEL={tag} bentoml build")
        except ModelLoadError as err:
            sys.exit(f"forecaster: {err}")
        return
    if "--help" not in rest and "-h" not in rest:
        from forecaster.serving import source
        from forecaster.serving.model import ModelLoadError

        try:
            source.check_source()
        except ModelLoadError as err:
            sys.exit(f"forecaster: {err}")
    # exec, so that SIGTERM reaches BentoML's arbiter directly (graceful shutdown)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.execv(sys.executable, [sys.executable, "-m", "bentoml", "serve", SERVICE,
                              "--working-dir", root, *rest])


if __name__ == "__main__":
    main()
