"""Training "similar sets" for the autoencoder (docs/samaf.md): one clean 1-s segment of a training utterance plus
K - 1 distorted copies of it, each also shifted by up to ``max_shift_s`` so that off-grid queries still match.

The K copies of a cluster are a *bank*: training draws ``train.members`` of them (8 of 16 by default) afresh for
every epoch, so the distortions a cluster shows change from epoch to epoch without re-rendering audio while
training. The distortion of each copy is drawn from every (distortion, level) condition, with the conditions of
:data:`HARD_CONDITIONS` (where a first version of SAMAF failed) ``hard_weight`` times as likely as the others.

A copy is made from a context excerpt around the segment (so reverb and echo have a past), distorted, and cut
back to the segment; for a time-scale change (``speed``, ``tempo`` with factor f) the segment's start moves to
``t / f`` inside the distorted excerpt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import parallel
from .audio import load_audio
from .features import MFCCConfig, mfcc
from .io import write_npz
from .progress import bar

CONTEXT_S = 0.5
_TIME_SCALING = {"speed", "tempo"}


def is_hard(name: str, level) -> bool:
    """Whether a (distortion, level) condition belongs to the families a first SAMAF model failed on.

    Those are: white or pink noise at 10 dB SNR or less, babble at any level, the large room's reverb, speed and
    pitch changes of 10 % (factor 0.90 or 1.10), and band-limiting (low-pass, high-pass, band-pass, telephone).
    """
    if name in ("noise_white", "noise_pink"):
        return float(level) <= 10
    if name == "babble":
        return True
    if name == "reverb":
        return str(level) == "large"
    if name in ("speed", "pitch"):
        return abs(float(level) - 1.0) >= 0.1 - 1e-9
    return name in ("lowpass", "highpass", "bandpass", "telephone")


def condition_weights(conditions: list[tuple[str, object]], hard_weight: float) -> np.ndarray:
    """Sampling probabilities of ``conditions``: 1 for each, ``hard_weight`` for :func:`is_hard` ones, normalised."""
    if not (isinstance(hard_weight, (int, float)) and not isinstance(hard_weight, bool) and hard_weight > 0
            and np.isfinite(hard_weight)):
        raise ValueError(f"clusters.hard_weight must be a number > 0, got {hard_weight!r}")
    w = np.array([hard_weight if is_hard(n, lv) else 1.0 for n, lv in conditions], np.float64)
    return w / w.sum()


@dataclass(frozen=True)
class ClusterSpec:
    """One planned cluster: the source utterance, the clean segment start and the copies' recipes."""

    utterance_id: str
    start_s: float
    copies: tuple  # of (distortion, level, shift_s, seed)


def plan_clusters(meta: pd.DataFrame, split: str, n_clusters: int, cluster_size: int, max_shift_s: float,
                  conditions: list[tuple[str, object]], seed: int, window_s: float = 1.0,
                  hard_weight: float = 1.0) -> list[ClusterSpec]:
    """Draw ``n_clusters`` clusters from utterances of ``split`` (seeded; independent of processing order).

    Each of the ``cluster_size - 1`` copies gets a condition drawn with :func:`condition_weights` (``hard_weight``
    1 draws every condition alike), a shift uniform in ``[-max_shift_s, max_shift_s]`` and its own seed.
    """
    if cluster_size < 2:
        raise ValueError(f"clusters.cluster_size must be >= 2 (one clean + copies), got {cluster_size}")
    if n_clusters < 1:
        raise ValueError(f"clusters.n_clusters must be >= 1, got {n_clusters}")
    if not 0 <= max_shift_s < window_s:
        raise ValueError(f"clusters.max_shift_s must be in [0, {window_s}), got {max_shift_s}")
    pool = meta[(meta["split"] == split) & (meta["duration_s"] >= window_s + 2 * max_shift_s)]
    if pool.empty:
        raise ValueError(f"no '{split}' utterances long enough to cut training clusters from")
    probs = condition_weights(conditions, hard_weight)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 104729, len(split)]))
    specs = []
    for _ in range(n_clusters):
        u = pool.iloc[int(rng.integers(len(pool)))]
        start = float(rng.uniform(max_shift_s, float(u["duration_s"]) - window_s - max_shift_s))
        copies = []
        for _k in range(cluster_size - 1):
            name, level = conditions[int(rng.choice(len(conditions), p=probs))]
            shift = float(rng.uniform(-max_shift_s, max_shift_s))
            copies.append((name, level, shift, int(rng.integers(0, 2**31 - 1))))
        specs.append(ClusterSpec(str(u["utterance_id"]), round(start, 4), tuple(copies)))
    return specs


def _member(audio: np.ndarray, sr: int, start_s: float, name: str, level, shift_s: float, seed: int,
            window_s: float = 1.0) -> np.ndarray:
    """One distorted, shifted 1-s copy of the segment at ``start_s`` (float32, exactly ``window_s * sr``)."""
    from .distortions import distort

    n = int(round(window_s * sr))
    s = start_s + shift_s
    ctx0 = max(0.0, s - CONTEXT_S)
    ctx1 = min(len(audio) / sr, s + window_s + CONTEXT_S)
    excerpt = audio[int(round(ctx0 * sr)): int(round(ctx1 * sr))]
    out = distort(excerpt, sr, name, level, seed)
    rel = s - ctx0
    if name in _TIME_SCALING:
        rel = rel / float(level)
    a = int(round(rel * sr))
    seg = out[a: a + n]
    if seg.size < n:
        seg = np.pad(seg, (0, n - seg.size))
    return seg.astype(np.float32)


def _cluster_features(args) -> np.ndarray:
    spec, audio, sr, cfg = args
    n = int(round(cfg.window_s * sr))
    a = int(round(spec.start_s * sr))
    members = [audio[a: a + n]]
    for name, level, shift, seed in spec.copies:
        members.append(_member(audio, sr, spec.start_s, name, level, shift, seed, cfg.window_s))
    return np.concatenate([mfcc(m, sr, hop_s=1.0, cfg=cfg, name=spec.utterance_id) for m in members])


def build_clusters(specs: list[ClusterSpec], meta: pd.DataFrame, corpus_dir: str | os.PathLike, sr: int,
                   cfg: MFCCConfig = MFCCConfig(), jobs: int = 1, progress: bool = True,
                   dask: str = "") -> np.ndarray:
    """MFCC windows of every cluster member, made serially, in ``jobs`` processes or in Dask workers (``dask``:
    ``local:N`` or a scheduler's address; :func:`samaf_lib.parallel.map_ordered`); the result depends on neither.

    Returns
    -------
    np.ndarray, float32, shape (n_clusters, cluster_size, 100, 13)
        Raw (not standardised) MFCCs; member 0 is the clean segment.
    """
    paths = dict(zip(meta["utterance_id"], meta["path"]))
    audio = {u: load_audio(os.path.join(corpus_dir, paths[u]), sr) for u in sorted({s.utterance_id for s in specs})}
    work = [(s, audio[s.utterance_id], sr, cfg) for s in specs]
    feats = parallel.map_ordered(_cluster_features, work, jobs=jobs, dask=dask, chunksize=16, progress=progress,
                                 desc="clusters")
    return np.stack(feats).astype(np.float32)


def save_clusters(path: str | os.PathLike, X: np.ndarray, specs: list[ClusterSpec]) -> None:
    """``X`` plus each cluster's source and recipe, atomically, in one ``.npz``."""
    recipes = np.array([";".join(f"{n}:{lv}:{sh:+.3f}" for n, lv, sh, _ in s.copies) for s in specs])
    write_npz(path, X=X, utterance_id=np.array([s.utterance_id for s in specs]),
              start_s=np.array([s.start_s for s in specs]), recipe=recipes)


def load_clusters(path: str | os.PathLike) -> np.ndarray:
    """The ``X`` array of a clusters file, checked: 4-D, finite."""
    with np.load(path) as z:
        X = z["X"]
    if X.ndim != 4:
        raise ValueError(f"{path}: expected clusters shaped (n, K, frames, n_mfcc), got {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: holds NaN or infinite features; rebuild it with `dvc repro data`")
    return X.astype(np.float32)
