"""One place that knows where the project lives.

Kernels start in different folders (JupyterLab opens in ``notebooks/``, papermill and nbval in whatever the
caller's cwd is, DVC in the repository root), so every path in the study is built from :func:`project_root`.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("dvc.yaml", "params.yaml")


def project_root(start: str | os.PathLike | None = None) -> Path:
    """Return the study's root folder.

    ``$SAMAF_ROOT`` wins when set. Otherwise the first folder, from ``start`` (default: the current directory)
    upwards, that holds ``dvc.yaml`` or ``params.yaml``. Falls back to the folder above this package.
    """
    env = os.environ.get("SAMAF_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / m).exists() for m in _MARKERS):
            return folder
    return Path(__file__).resolve().parent.parent


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/data``: everything the pipeline generates."""
    return Path(root) if root is not None else project_root() / "data"


def reports_dir() -> Path:
    """``<root>/reports``: metrics, tables, figures and executed notebooks."""
    return project_root() / "reports"


def resolve(path: str | os.PathLike) -> Path:
    """Resolve a path from ``params.yaml`` (relative to the project root) to an absolute path."""
    p = Path(path)
    return p if p.is_absolute() else project_root() / p


SCRATCH = "scratch"


def output_root(output: str | os.PathLike | None = "") -> Path:
    """Where a notebook writes what it makes.

    The pipeline runs every notebook with ``-p output .``: its outputs go to ``data/``, ``models/`` and
    ``reports/`` of the project, where the next stage reads them. A notebook run on its own (in JupyterLab, under
    nbval) keeps the default ``""`` and writes under ``scratch/`` (git-ignored) instead, so exploring never
    overwrites what the pipeline made; it still reads the pipeline's outputs from the project.
    """
    if output is None or str(output).strip() == "":
        return project_root() / SCRATCH
    return resolve(output)


def shown(path: str | os.PathLike) -> str:
    """``path`` relative to the project root, for printing (executed notebooks never show the machine's paths)."""
    p = Path(path)
    try:
        return p.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return p.name


#: The paper terms of the model the study evaluates as "samaf" (params.yaml ``hash.loss``; a test keeps the two equal):
#: reconstruction and the hash term with our additions, the best variant of the ablation grid on the validation task
#: (docs/samaf.md, "The study's model").
STUDY_LOSS = "mse+hash"
#: Folder (under ``models/`` and ``reports/``) of the full ablation grid, ``make repro-full``.
ABLATION_FULL_TAG = "ablation_full"


def study_checkpoint(bits: int = 128, loss: str = STUDY_LOSS) -> str:
    """Where the training stage leaves a model, relative to the project root: ``models/samaf-<bits>-<loss>/best.pt``."""
    return f"models/samaf-{int(bits)}-{loss}/best.pt"


def window_suffix(window_s: float) -> str:
    """What an ablation variant's name adds for its encoder window: nothing for 1 s (the first design's window, in
    which the grid was first measured), ``"-0.5s"`` for 0.5 s."""
    return "" if float(window_s) == 1.0 else f"-{float(window_s):g}s"


def study_variant(bits: int = 128, loss: str = STUDY_LOSS, window_s: float = 1.0) -> str:
    """The ablation's name of the study's model (the train stage's, to its plateau within ``train.epochs``):
    ``"study-128-mse"`` for a 1-s window, ``"study-128-mse-0.5s"`` for 0.5 s. The grid's variant with the same
    settings, ``"128-mse"`` (``"128-mse-0.5s"``), is trained with the grid's budget (``ablation.epochs``); the two
    are one model only when the budgets are equal."""
    return f"study-{int(bits)}-{loss}{window_suffix(window_s)}"
