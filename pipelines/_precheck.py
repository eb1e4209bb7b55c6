"""Checks an entry point runs in its first second, before lightning and mlflow are imported.

A mistake in the command line or the data file should cost a second and read as one sentence,
not a minute of imports, an opened store and a traceback. ``checked()`` turns every
:class:`~forecaster.errors.UsageError` (these checks', the config rules', the data rules') into
that sentence on stderr and exit status 2; ``HYDRA_FULL_ERROR=1`` lets the traceback through.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from forecaster.data.files import header, input_files, is_many
from forecaster.errors import UsageError
from forecaster.runtime import explicit_threads

EXIT_USAGE = 2  # what argparse and most CLIs return for bad arguments


@contextmanager
def checked() -> Iterator[None]:
    """Run the block; a ``UsageError`` becomes its message on stderr and exit status 2."""
    try:
        yield
    except UsageError as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def check(cfg: DictConfig) -> None:
    """Every check that needs neither the heavy stack nor the store: added keys, the data file.

    Raises:
        UsageError: the first problem found, with what to change.
    """
    check_added_keys(cfg)
    check_data_source(cfg.data)
    if "trainer" in cfg:
        explicit_threads(cfg.trainer.get("threads"), "trainer.threads")


def check_added_keys(cfg: DictConfig) -> None:
    """Refuse ``+group.key=value`` when ``key`` is not a key of the chosen group option.

    Hydra's hint for a misspelt key is to add it with ``+``; for a group whose values the code
    reads by name (``model``, ``data``...) an added unknown key would be ignored and the run
    would silently use the default. Keys added under a node whose ``_target_`` is another
    library's (an optimiser, Lightning's trainer) are constructor arguments, which
    ``instantiate`` checks itself, so they are let through; the project's own objects (model,
    data) take only the keys of their config, so a misspelt one is named here, with the key
    meant.
    """
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    groups = set(hydra_cfg.runtime.choices)
    added = [o for o in overrides if o.startswith("+") and not o.startswith("++")]
    added = [o for o in added if "." in o[1:].split("=", 1)[0].split("@", 1)[0]]
    added = [o for o in added if o[1:].split(".", 1)[0] in groups]
    if not added:
        return
    base = compose(hydra_cfg.job.config_name, overrides=[o for o in overrides if o not in added])
    for override in added:
        parts = override[1:].split("=", 1)[0].split(".")
        node = base
        for depth, part in enumerate(parts):
            if not isinstance(node, DictConfig) or not str(
                    node.get("_target_", "forecaster.")).startswith("forecaster."):
                break  # another library's constructor arguments: instantiate names a wrong one
            if part not in node:
                raise UsageError(_unknown_key(override, parts[:depth + 1], node,
                                              hydra_cfg.runtime.choices[parts[0]]))
            node = node[part]


def _unknown_key(override: str, path: list[str], node: DictConfig, choice: str) -> str:
    parent, key = ".".join(path[:-1]), path[-1]
    known = sorted(str(k) for k in node.keys())
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {parent}.{close[0]}? " if close else ""
    return (f"{override}: {parent} ({path[0]}={choice}) has no key {key!r}, so the value would "
            f"be ignored; {hint}its keys: {', '.join(known)}")


def check_data_source(data: DictConfig) -> None:
    """For ``data.source=csv``: the file exists, is readable, and has the mapped columns.

    Only the header is read, so a large file costs nothing here.
    """
    if data.get("source") != "csv":
        return
    if OmegaConf.is_missing(data, "path") or not data.get("path"):
        raise UsageError("data=csv needs data.path=FILE (a long or wide .csv or .parquet file)")
    path = Path(str(data.path))
    if is_many(str(data.path)):  # shards: the first one's header stands for all
        path = input_files(str(data.path), key="data.path")[0][0]
    elif not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise UsageError(f"data.path={data.path}: no such file, folder or glob{where}")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError(f"data.path={data.path}: expected a .csv or .parquet file, a folder "
                         "or a glob of them")
    try:
        columns = header(path)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"data.path={data.path} cannot be read: {err}") from err
    wide = bool(data.get("wide", False))
    needed = {"time_col": "time"} if wide else {"time_col": "time", "target_col": "target"}
    missing = [f"{data.get(k)!r} ({what}, data.{k})" for k, what in needed.items()
               if data.get(k) not in columns]
    missing += [f"{c!r} (data.{k})" for k in ("futr_exog", "static_cols") if not wide
                for c in data.get(k) or () if c not in columns]
    if wide and data.get("time_col") in columns and len(columns) < 2:
        missing.append("a column per series (data.wide=true)")
    if missing:
        raise UsageError(
            f"data.path={data.path} lacks {' and '.join(missing)}. Columns found: {columns}. "
            "Map yours with data.time_col=COLUMN data.target_col=COLUMN data.id_col=COLUMN "
            "(no id column: one series), or data.wide=true for a time column plus one column "
            "per series")
