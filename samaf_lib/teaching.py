"""Teaching pictures: what each fingerprinter computes, drawn on one clip.

Each function draws one picture with the system's own code and parameters and returns ``(fig, info)``: a
``matplotlib.figure.Figure`` (not registered with pyplot, so nothing is shown or saved until the notebook displays
it) and a dict of the numbers the picture states, so a test, or a student, can check them.

* :func:`spectrogram` is the helper the others build on: a dB spectrogram with time in seconds, frequency in Hz and
  a colour bar.
* :func:`dejavu_constellation`: Dejavu's spectral peaks and the pairs it hashes, on its own spectrogram. With the
  2019 defaults at 16 kHz a frame is 256 ms and the hop 128 ms, and many pairs join two peaks of the same frame
  (``Δt = 0``); the picture says how many.
* :func:`rafs_bits`: RAFS's 32-bit sub-fingerprints of a clip and of a distorted copy, and where they differ (the
  bit error rate that decides a match).
* :func:`panako_triplets`: event points of a clip, of a time-stretched copy and of a pitch-shifted copy, with one
  triplet followed through all three when its hash survives; where none survives, the panel says so.
* :func:`samaf_reconstruction`: SAMAF's input window of MFCCs beside the autoencoder's reconstruction from its code.
* :func:`samaf_bits`: SAMAF's code of one window, clean and distorted, with the Hamming distances between them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from . import distortions
from .audio import check_audio, resample

#: Colours of the highlighted items (anchors of Dejavu pairs, the followed triplet).
_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:cyan", "tab:pink", "tab:olive")
_BITS_CMAP = ListedColormap(["white", "black"])
_XOR_CMAP = ListedColormap(["white", "tab:red"])


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _show_db(ax: Axes, db: np.ndarray, sr: int, hop_length: int, *, fig: Figure | None = None,
             cmap: str = "magma", vmin: float | None = None, vmax: float | None = None, colorbar: bool = True,
             label: str = "dB") -> Any:
    """``librosa.display.specshow`` of a (frequency bins, frames) dB matrix of a linear-frequency STFT."""
    import librosa.display

    mesh = librosa.display.specshow(db, sr=sr, hop_length=hop_length, n_fft=2 * (db.shape[0] - 1), x_axis="time",
                                    y_axis="linear", ax=ax, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if colorbar:
        (fig or ax.figure).colorbar(mesh, ax=ax, label=label, pad=0.01)
    return mesh


def spectrogram(ax: Axes, audio: np.ndarray, sr: int, *, title: str | None = None, fig: Figure | None = None,
                n_fft: int = 512, hop_length: int = 160, top_db: float = 80.0, fmax: float | None = None,
                cmap: str = "magma", colorbar: bool = True) -> Any:
    """Draw the dB magnitude spectrogram of ``audio`` on ``ax`` (0 dB = the clip's loudest bin).

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw.
    audio : np.ndarray, float, shape (n,)
        Mono samples.
    sr : int
        Their sample rate.
    title : str, optional
        Axes title.
    fig : Figure, optional
        The figure that gets the colour bar (default: ``ax.figure``).
    n_fft, hop_length : int
        STFT frame and hop in samples (32 ms and 10 ms at 16 kHz, the resolution of SAMAF's MFCCs).
    top_db : float
        Dynamic range shown below the maximum.
    fmax : float, optional
        Top of the frequency axis (Hz; default ``sr / 2``).
    colorbar : bool
        Add a colour bar labelled "dB".

    Returns
    -------
    The QuadMesh drawn.
    """
    import librosa

    a = check_audio(audio, sr, name="audio", min_duration_s=0.0, allow_silence=True)
    mag = np.abs(librosa.stft(a, n_fft=n_fft, hop_length=hop_length))
    db = librosa.amplitude_to_db(mag, ref=max(float(mag.max()), 1e-10), top_db=top_db)
    mesh = _show_db(ax, db, sr, hop_length, fig=fig, cmap=cmap, vmin=-top_db, vmax=0.0, colorbar=colorbar)
    if fmax is not None:
        ax.set_ylim(0, fmax)
    if title is not None:
        ax.set_title(title)
    return mesh


# ----------------------------------------------------------------------------------------------------------------
# Dejavu


def dejavu_pairs(peaks: np.ndarray, fan_value: int = 15, min_dt: int = 0, max_dt: int = 200) -> np.ndarray:
    """The peak pairs Dejavu hashes, as indices into ``peaks``.

    The same pairs as :func:`samaf_lib.systems.dejavu.pair_hashes`, in the same order (by anchor, then partner):
    each peak with each of its next ``fan_value`` peaks whose frame distance is in ``[min_dt, max_dt]``.

    Parameters
    ----------
    peaks : np.ndarray, int, shape (n, 2)
        ``(frequency bin, frame)`` rows sorted by frame (:func:`samaf_lib.systems.dejavu.find_peaks`).

    Returns
    -------
    np.ndarray, int64, shape (m, 2)
        ``(anchor, partner)`` row indices into ``peaks``.
    """
    n = len(peaks)
    rows = []
    for k in range(1, min(fan_value, n - 1) + 1):
        i = np.arange(n - k)
        dt = peaks[i + k, 1] - peaks[i, 1]
        keep = (dt >= min_dt) & (dt <= max_dt)
        rows.append(np.stack([i[keep], i[keep] + k], axis=1))
    if not rows:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(rows).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def _choose_anchors(peaks: np.ndarray, pairs: np.ndarray, n_anchors: int, n_frames: int) -> list[int]:
    """Anchors whose pairs span time: most pairs with ``Δt > 0`` first, spread at least a few frames apart."""
    if len(pairs) == 0 or n_anchors <= 0:
        return []
    dt = peaks[pairs[:, 1], 1] - peaks[pairs[:, 0], 1]
    n = len(peaks)
    moving = np.bincount(pairs[dt > 0, 0], minlength=n)
    total = np.bincount(pairs[:, 0], minlength=n)
    order = np.lexsort((peaks[:, 1], -total, -moving))        # most Δt > 0 pairs, then most pairs, then earliest
    order = order[total[order] > 0]
    gap = max(1, n_frames // (2 * n_anchors))
    chosen: list[int] = []
    for strict in (True, False):                               # spread out first; then fill up
        for i in order:
            if len(chosen) == n_anchors:
                return chosen
            if i in chosen or (strict and moving[i] == 0):
                continue
            if strict and any(abs(int(peaks[i, 1]) - int(peaks[c, 1])) < gap for c in chosen):
                continue
            chosen.append(int(i))
    return chosen


def dejavu_constellation(audio: np.ndarray, sr: int, *, params: Any = None, seconds: float | None = 5.0,
                         n_anchors: int = 4, fmax: float | str | None = "auto") -> tuple[Figure, dict[str, Any]]:
    """Dejavu's constellation: spectral peaks and the pairs of a few anchors on Dejavu's own spectrogram.

    The spectrogram, peaks and pairs are Dejavu's (int16 scale, Hann frames of ``n_fft``, power spectral density
    in dB, diamond-neighbourhood maxima above ``amp_min``, each peak paired with its next ``fan_value`` peaks).
    Frame ``t`` is drawn at its start, ``t * hop / sr`` s, the time Dejavu stores with a hash. The anchors are
    chosen so that their pairs span time (most pairs with ``Δt > 0`` first); each pair is a line from the anchor
    (star) to its partner (dot), dotted when both lie in the same frame (``Δt = 0``).

    Parameters
    ----------
    audio : np.ndarray, float, shape (n,)
        Mono samples in [-1, 1].
    sr : int
        Their sample rate (Dejavu works at the clip's own rate).
    params : Dejavu or dict, optional
        A :class:`samaf_lib.systems.dejavu.Dejavu` or its parameters (e.g. ``params.yaml``'s ``systems.dejavu``);
        default: the 2019 defaults.
    seconds : float or None
        Length of the excerpt drawn, from the start (None: all of it).
    n_anchors : int
        Anchors whose pairs are drawn.
    fmax : float, "auto" or None
        Top of the frequency axis: Hz; ``"auto"`` a little above the highest peak; None ``sr / 2``.

    Returns
    -------
    fig : Figure
    info : dict
        ``n_peaks``, ``n_pairs``, ``n_pairs_dt0`` and ``share_dt0`` (pairs within one frame), ``n_frames``,
        ``hop_s`` and ``frame_s`` (seconds), ``seconds`` (excerpt length), ``params`` (Dejavu's),
        ``peaks`` (``(bin, frame)`` int64, (n, 2)), ``pairs`` (``(anchor, partner)`` indices into ``peaks``,
        (m, 2), in :func:`samaf_lib.systems.dejavu.pair_hashes` order), ``anchors`` (indices into ``peaks``),
        ``drawn_pairs`` (rows of ``pairs`` drawn).
    """
    from .systems import dejavu as dj

    system = params if isinstance(params, dj.Dejavu) else dj.Dejavu(**dict(params or {}))
    p, hop = system.params, system.hop
    a = check_audio(audio, sr, name="audio", min_duration_s=p["n_fft"] / sr)
    if seconds is not None:
        a = a[: int(np.round(seconds * sr))]
    samples = dj.to_int16_scale(a)
    spec = dj.spectrogram_db(samples, int(sr), p["n_fft"], hop)
    peaks = dj.find_peaks(spec, p["neighborhood_size"], p["amp_min"])
    pairs = dejavu_pairs(peaks, p["fan_value"], p["min_hash_time_delta"], p["max_hash_time_delta"])
    dt = peaks[pairs[:, 1], 1] - peaks[pairs[:, 0], 1] if len(pairs) else np.zeros(0, np.int64)
    n_dt0 = int(np.sum(dt == 0))
    share = n_dt0 / len(pairs) if len(pairs) else 0.0
    anchors = _choose_anchors(peaks, pairs, n_anchors, spec.shape[1])

    fig = _new_figure(14, 5)
    ax = fig.add_subplot()
    _show_db(ax, spec, int(sr), hop, fig=fig, cmap="Greys", label="dB (power spectral density, int16 scale)")
    t_s = peaks[:, 1] * hop / sr
    f_hz = peaks[:, 0] * sr / p["n_fft"]
    ax.scatter(t_s, f_hz, s=14, facecolor="gold", edgecolor="black", linewidth=0.5, zorder=3, label="peaks")
    drawn = []
    for c, i in enumerate(anchors):
        colour = _COLOURS[c % len(_COLOURS)]
        rows = np.flatnonzero(pairs[:, 0] == i)
        drawn.extend(rows.tolist())
        for r in rows:
            j = pairs[r, 1]
            ax.plot([t_s[i], t_s[j]], [f_hz[i], f_hz[j]], color=colour, lw=1.4, zorder=4,
                    linestyle=":" if dt[r] == 0 else "-")
            ax.scatter([t_s[j]], [f_hz[j]], s=22, color=colour, zorder=5)
        n_moving = int(np.sum(dt[rows] > 0))
        ax.scatter([t_s[i]], [f_hz[i]], s=160, marker="*", color=colour, edgecolor="black", zorder=6,
                   label=f"anchor at {t_s[i]:.2f} s, {f_hz[i]:.0f} Hz: {len(rows)} pairs, {n_moving} with Δt > 0")
    if fmax == "auto":
        top = float(f_hz.max()) * 1.15 if len(f_hz) else sr / 2
        ax.set_ylim(0, min(sr / 2, max(top, 500.0)))
    elif fmax is not None:
        ax.set_ylim(0, float(fmax))
    dur = a.size / sr
    ax.set_title(f"Dejavu constellation of {dur:.1f} s: {len(peaks)} peaks, {len(pairs)} pairs; {n_dt0} pairs "
                 f"({share:.0%}) have Δt = 0 (both peaks in the same frame)\n"
                 f"n_fft {p['n_fft']} ({1000 * p['n_fft'] / sr:.0f} ms), hop {hop} ({1000 * hop / sr:.0f} ms), "
                 f"fan-out {p['fan_value']}, peak neighbourhood radius {p['neighborhood_size']} bins/frames, "
                 f"amp_min {p['amp_min']:g} dB\nlines: the pairs of {len(anchors)} anchors (dotted: Δt = 0)",
                 fontsize=10)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    info = {"n_peaks": len(peaks), "n_pairs": len(pairs), "n_pairs_dt0": n_dt0, "share_dt0": share,
            "n_frames": int(spec.shape[1]), "hop_s": hop / sr, "frame_s": p["n_fft"] / sr, "seconds": dur,
            "params": dict(p), "peaks": peaks, "pairs": pairs, "anchors": anchors, "drawn_pairs": drawn}
    return fig, info


# ----------------------------------------------------------------------------------------------------------------
# RAFS


def rafs_bits(clean: np.ndarray, distorted: np.ndarray, sr: int, *, label: str = "distorted",
              n: int = 256) -> tuple[Figure, dict[str, Any]]:
    """RAFS bit images of a clip and of a distorted copy, and their difference, with the bit error rate.

    Row ``k`` is sub-fingerprint ``k`` (time ``k * 64 / 5512`` s, 11.6 ms apart), column ``m`` its bit ``m`` (the
    sign of an energy difference between bands ``m`` and ``m + 1`` from one frame to the next; bit 0 is the
    lowest band, 300 Hz). The copy must stay aligned with the clip (noise, filters, codecs; not ``tempo`` or
    ``speed``): the rows compared are the same sub-fingerprint index. A block of 256 sub-fingerprints (3 s)
    is what RAFS compares; it declares a match below a bit error rate of 0.35.

    Parameters
    ----------
    clean, distorted : np.ndarray, float, shape (n,)
        Mono samples at ``sr``.
    sr : int
        Their sample rate (RAFS resamples to 5512 Hz).
    label : str
        What the distortion is, for the middle panel's title.
    n : int
        Sub-fingerprints shown (at most; the first ``n`` both clips have).

    Returns
    -------
    fig : Figure
    info : dict
        ``ber`` (:func:`samaf_lib.systems.rafs.ber` of the ``n`` codes), ``n_bit_errors``, ``n_subfingerprints``,
        ``hop_s`` (seconds between sub-fingerprints), ``threshold`` (0.35), ``label``, and the bit images
        ``clean_bits`` / ``distorted_bits`` (uint8, (n, 32)).
    """
    from .systems import rafs as rf

    a, b = rf.bit_image(clean, sr), rf.bit_image(distorted, sr)
    k = min(len(a), len(b), int(n))
    if k == 0:
        raise ValueError(f"rafs_bits needs clips of at least {(2048 + 64) / 5512:.2f} s (one sub-fingerprint)")
    a, b = a[:k], b[:k]
    diff = a ^ b
    ber = rf.ber(rf.pack_bits(a), rf.pack_bits(b))
    errors = int(diff.sum())
    hop_s = 64 / 5512
    fig = _new_figure(12, 6)
    axes = fig.subplots(1, 3, sharey=True)
    panels = ((a, _BITS_CMAP, "clean"), (b, _BITS_CMAP, label),
              (diff, _XOR_CMAP, (f"differing bits (XOR): BER {ber:.3f}\n{errors} of {32 * k} bits; "
                                 "a match needs BER < 0.35")))
    extent = (-0.5, 31.5, k - 0.5, -0.5)
    for ax, (img, cmap, title) in zip(axes, panels):
        ax.imshow(img, aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest", extent=extent)
        ax.set_title(title)
        ax.set_xlabel("bit index (0 = 300 Hz band ... 31 = 2 kHz band)")
        ax.set_xticks([0, 8, 16, 24, 31])
    axes[0].set_ylabel(f"sub-fingerprint index (one every {1000 * hop_s:.1f} ms)")
    right = axes[-1].secondary_yaxis("right", functions=(lambda i: i * hop_s, lambda s: s / hop_s))
    right.set_ylabel("time (s)")
    fig.suptitle(f"RAFS sub-fingerprints of {k * hop_s:.2f} s: clean vs {label}, bit error rate {ber:.3f}")
    info = {"ber": ber, "n_bit_errors": errors, "n_subfingerprints": k, "hop_s": hop_s, "threshold": 0.35,
            "label": label, "clean_bits": a, "distorted_bits": b}
    return fig, info


# ----------------------------------------------------------------------------------------------------------------
# Panako and our triplets


def _cq_picture(system: Any, audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """The system's own constant-Q spectrum of ``audio``: (dB re the maximum, shape (bins, frames); bin centres Hz).

    Frame ``m`` is at ``m / system.frames_per_second`` s, the time the system gives its event points.
    """
    x = resample(np.asarray(audio, np.float32), int(sr), system.params["sr"])
    if hasattr(system, "constant_q"):                     # Panako: linear magnitudes, (frames, bins)
        cq = system.constant_q()
        mag = cq.magnitudes(x).T.astype(np.float64)
        db = 20.0 * np.log10(np.maximum(mag, 1e-10))
    else:                                                 # our triplets: dB, (bins, frames)
        cq = system._cq()
        db = cq.magnitude_db(x).astype(np.float64)
    return db - db.max(), np.asarray(cq.freqs, np.float64)


def _follow(clean_pts: np.ndarray, clean_h: np.ndarray, pts: np.ndarray, h: np.ndarray, time_factor: float,
            bin_shift: float, tol_s: float, tol_bins: float) -> dict[int, tuple[int, float]]:
    """Clean triplet index -> (copy triplet index, error) for each clean triplet whose hash occurs in the copy at the
    place the distortion moves it: times divided by ``time_factor``, bins moved by ``bin_shift``, every one of the
    three points within ``tol_s`` seconds and ``tol_bins`` bins."""
    where: dict[int, list[int]] = {}
    for j, code in enumerate(h.tolist()):
        where.setdefault(code, []).append(j)
    out: dict[int, tuple[int, float]] = {}
    for i, code in enumerate(clean_h.tolist()):
        for j in where.get(code, ()):
            dt = pts[j, :, 0] - clean_pts[i, :, 0] / time_factor
            df = pts[j, :, 1] - clean_pts[i, :, 1] - bin_shift
            if np.all(np.abs(dt) <= tol_s) and np.all(np.abs(df) <= tol_bins):
                err = float(np.sum(np.abs(dt)) / tol_s + np.sum(np.abs(df)) / tol_bins)
                if i not in out or err < out[i][1]:
                    out[i] = (j, err)
    return out


def panako_triplets(clean: np.ndarray, sr: int, system: Any, *, tempo: float = 1.05, pitch: float = 1.05,
                    seed: int = 0, tolerance_frames: float = 3.0,
                    tolerance_bins: float = 1.5) -> tuple[Figure, dict[str, Any]]:
    """Event points and one followed triplet in a clip, a time-stretched copy and a pitch-shifted copy.

    The copies are ``distortions.distort(clean, sr, "tempo", tempo, seed)`` (duration ``1 / tempo``, pitch kept)
    and ``distort(clean, sr, "pitch", pitch, seed)`` (frequencies times ``pitch``, duration kept). A clean triplet
    *survives* in a copy when a triplet of the copy has exactly its hash and lies where the distortion moves it:
    every point's time divided by the tempo factor (within ``tolerance_frames`` frames) and its constant-Q bin
    moved by ``bins_per_octave * log2(pitch)`` (within ``tolerance_bins``). One triplet is highlighted, the
    same one in every panel: one that survives in both copies if there is one, else in one of them. A copy in
    which no triplet survives says so in its title, and nothing is highlighted there. (Our triplets system also
    looks each query triplet up with its frequency differences moved by one bin; the exact hash used here
    counts fewer survivors than its lookup finds.) Times are the ones the system gives its event points: for
    Panako the start of a frame, whose lowest kernels last 0.74 s, so a low sound shows from up to 0.74 s before it
    begins; for our triplets the centre of a frame.

    Parameters
    ----------
    clean : np.ndarray, float, shape (n,)
        Mono samples at ``sr`` (a few seconds).
    sr : int
        Their sample rate.
    system : Panako or Triplets
        The system (its parameters decide everything drawn), e.g. ``systems.get("panako")``.
    tempo, pitch : float
        Factors of the two copies.
    seed : int
        Seed of the distortions (they are deterministic; kept for the interface).
    tolerance_frames, tolerance_bins : float
        How far a surviving triplet's points may lie from where the distortion moves them.

    Returns
    -------
    fig : Figure
    info : dict
        ``system`` (name), ``bin_shift`` (bins the pitch copy moves), ``hash`` (the highlighted triplet's hash or
        None), ``followed`` (its index among the clean triplets or None) and ``versions``: for each of
        ``"clean"``, ``"tempo"``, ``"pitch"`` a dict with ``label``, ``n_events``, ``n_triplets``, ``n_hashes``
        (distinct), ``shared_hashes`` (distinct hashes it has in common with the clean clip, chance collisions
        included), ``surviving`` (clean triplets that survive in it), ``highlighted`` (index of the drawn triplet
        among its triplets, or None), ``triplet`` ((3, 2) ``(time_s, bin)`` of the drawn triplet, or None),
        ``events`` ((n, 2) ``(time_s, bin)``), ``triplets`` ((m, 3, 2)) and ``hashes`` ((m,)).
    """
    a = check_audio(clean, sr, name="clean", min_duration_s=1.0)
    bpo = system.params["bins_per_octave"]
    fps = system.frames_per_second
    shift = bpo * math.log2(pitch)
    copies = {"clean": (a, "clean", 1.0, 0.0),
              "tempo": (distortions.distort(a, sr, "tempo", tempo, seed),
                        f"tempo {tempo:g} (duration × {1 / tempo:.3f}, pitch kept)", tempo, 0.0),
              "pitch": (distortions.distort(a, sr, "pitch", pitch, seed),
                        f"pitch {pitch:g} ({shift:+.2f} bins, duration kept)", 1.0, shift)}
    versions: dict[str, dict[str, Any]] = {}
    for key, (audio, label, _, _) in copies.items():
        pts = system.triplets(audio, sr)
        h, _ = system.fingerprint(audio, sr)                # the same triplets, in the same order
        if len(h) != len(pts):
            raise RuntimeError(f"{system.name}: {len(h)} hashes for {len(pts)} triplets")
        versions[key] = {"label": label, "audio": audio, "events": system.event_points(audio, sr),
                         "triplets": pts, "hashes": np.asarray(h, np.int64)}
    clean_v = versions["clean"]
    follows = {}
    for key in ("tempo", "pitch"):
        _, _, factor, bins = copies[key]
        v = versions[key]
        follows[key] = _follow(clean_v["triplets"], clean_v["hashes"], v["triplets"], v["hashes"], factor, bins,
                               tolerance_frames / fps, tolerance_bins)
    # the followed triplet: surviving in most copies, then the best fit, then the earliest
    cands = set(follows["tempo"]) | set(follows["pitch"])
    followed = min(cands, key=lambda i: (-sum(i in f for f in follows.values()),
                                         sum(f[i][1] for f in follows.values() if i in f), i)) if cands else None
    clean_codes = set(clean_v["hashes"].tolist())
    for key, v in versions.items():
        v["n_events"], v["n_triplets"] = len(v["events"]), len(v["triplets"])
        v["n_hashes"] = len(set(v["hashes"].tolist()))
        v["shared_hashes"] = len(clean_codes & set(v["hashes"].tolist()))
        v["surviving"] = v["n_triplets"] if key == "clean" else len(follows[key])
        if followed is None:
            v["highlighted"] = None
        elif key == "clean":
            v["highlighted"] = int(followed)
        else:
            v["highlighted"] = follows[key][followed][0] if followed in follows[key] else None
        v["triplet"] = None if v["highlighted"] is None else v["triplets"][v["highlighted"]]

    fig = _new_figure(16, 5)
    axes = fig.subplots(1, 3, sharex=True, sharey=True)      # one time scale: the tempo copy is visibly shorter
    x_end = 0.0
    for c, (ax, (key, v)) in enumerate(zip(axes, versions.items())):
        db, freqs = _cq_picture(system, v["audio"], sr)
        n_bins, n_frames = db.shape
        im = ax.imshow(db, origin="lower", aspect="auto", cmap="Greys", vmin=-60, vmax=0, interpolation="nearest",
                       extent=(-0.5 / fps, (n_frames - 0.5) / fps, -0.5, n_bins - 0.5))
        if c == 2:
            fig.colorbar(im, ax=ax, label="dB re the clip's maximum", pad=0.1)
        ev = v["events"]
        ax.scatter(ev[:, 0], ev[:, 1], s=12, facecolor="gold", edgecolor="black", linewidth=0.4, zorder=3,
                   label="event points")
        seconds = len(v["audio"]) / sr
        title = f"{v['label']}\n{v['n_events']} event points, {v['n_triplets']} triplets in {seconds:.2f} s"
        if key == "clean":
            kept = [k for k in ("tempo", "pitch") if versions[k]["triplet"] is not None]
            if kept:
                title += f"\nhighlighted: a triplet that survives in the {' and the '.join(kept)} copy"
            else:
                title += "\nno triplet survives in either copy"
            title += "\n "                                   # as many lines as the other panels
        else:
            title += (f"\n{v['shared_hashes']} distinct hashes shared with clean\n{v['surviving']} of the clean "
                      "triplets survive")
            if v["surviving"] == 0:
                title += ": no triplet survives"
            elif v["triplet"] is None:
                title += " (not the highlighted one)"
        if v["triplet"] is not None:
            t = v["triplet"]
            ax.plot(t[:, 0], t[:, 1], "-", color="tab:red", lw=2, zorder=4)
            ax.scatter(t[:, 0], t[:, 1], s=70, color="tab:red", edgecolor="black", zorder=5,
                       label="the followed triplet")
            for j, (x, y) in enumerate(t):
                ax.annotate(f"e{j + 1}", (x, y), textcoords="offset points", xytext=(4, 6), color="tab:red",
                            fontsize=9, weight="bold", zorder=6)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
        x_end = max(x_end, (n_frames - 0.5) / fps)
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    f0, top = float(freqs[0]), len(freqs) - 0.5
    axes[0].set_ylabel(f"constant-Q bin ({bpo} per octave)")
    axes[0].set_ylim(-0.5, top)
    axes[0].set_xlim(-0.5 / fps, x_end)
    hz = axes[-1].secondary_yaxis("right", functions=(lambda k: f0 * 2.0 ** (np.asarray(k) / bpo),
                                                       lambda f: bpo * np.log2(np.maximum(np.asarray(f), 1e-9) / f0)))
    hz.set_ylabel("frequency (Hz)")
    fig.suptitle(f"{system.name}: event points and one triplet followed through a time stretch and a pitch shift")
    for v in versions.values():
        del v["audio"]
    info = {"system": system.name, "bin_shift": shift, "followed": None if followed is None else int(followed),
            "hash": None if followed is None else int(clean_v["hashes"][followed]), "versions": versions}
    return fig, info


# ----------------------------------------------------------------------------------------------------------------
# SAMAF


def _model_of(system_or_model: Any) -> Any:
    return getattr(system_or_model, "model", system_or_model)


def samaf_reconstruction(system_or_model: Any, window_mfcc: np.ndarray, *,
                         title: str | None = None) -> tuple[Figure, dict[str, Any]]:
    """SAMAF's input window beside the autoencoder's reconstruction of it from the code alone.

    The window is standardised as the model sees it (train-split statistics, and per-window mean removal when the
    model was trained with it), encoded into ``bits`` activations, and decoded again. The decoder of a model with
    ``reverse_target`` outputs the window reversed in time; it is flipped back here so that both panels run
    forward. The MSE is the training loss's reconstruction term (mean squared difference in standardised
    units).

    Parameters
    ----------
    system_or_model : SAMAFSystem or SAMAF
        The system (its ``model`` is used) or the model.
    window_mfcc : np.ndarray, float, shape (100, 13)
        One raw MFCC window, e.g. ``system.windows(audio, sr)[0]``.
    title : str, optional
        Figure title (default: one naming the code size and the MSE).

    Returns
    -------
    fig : Figure
    info : dict
        ``mse``, ``bits``, ``reverse_target``, ``input`` (the standardised window, (100, 13)), ``reconstruction``
        (in the input's time order, (100, 13)) and ``code`` (the window's bits, uint8 (bits,)).
    """
    import torch

    model = _model_of(system_or_model)
    frames, n_mfcc = model.input_shape
    w = np.asarray(window_mfcc, np.float32)
    if w.shape != (frames, n_mfcc):
        raise ValueError(f"window_mfcc must be one raw MFCC window shaped ({frames}, {n_mfcc}), got {w.shape}")
    x = model.standardise(w[None])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            recon, z = model(x)
            target = model.target(x)
            mse = float(torch.mean((recon - target) ** 2))
    finally:
        model.train(was_training)
    rec = recon[0].cpu().numpy()
    reverse = bool(model.config["reverse_target"])
    if reverse:
        rec = rec[::-1].copy()
    inp = np.asarray(x[0], np.float32)
    code = (z[0].cpu().numpy() > 0).astype(np.uint8)
    features = getattr(system_or_model, "features", None)
    frame_s = features.hop_length / features.sr if features is not None else 0.01
    lim = float(max(np.abs(inp).max(), np.abs(rec).max(), 1e-6))
    fig = _new_figure(13, 4)
    axes = fig.subplots(1, 2, sharey=True)
    extent = (0.0, frames * frame_s, -0.5, n_mfcc - 0.5)
    order = "un-reversed to the input's order" if reverse else "in the input's order"
    names = ("input: standardised MFCCs", f"reconstruction from the {model.bits}-bit code ({order})\nMSE {mse:.3f}")
    for ax, img, name in zip(axes, (inp, rec), names):
        im = ax.imshow(img.T, origin="lower", aspect="auto", cmap="coolwarm", vmin=-lim, vmax=lim,
                       interpolation="nearest", extent=extent)
        fig.colorbar(im, ax=ax, label="standardised value", pad=0.01)
        ax.set_title(name)
        ax.set_xlabel(f"time in the window (s; one frame every {1000 * frame_s:.0f} ms)")
    axes[0].set_ylabel("MFCC coefficient")
    fig.suptitle(title or f"SAMAF autoencoder on one {frames * frame_s:g}-s window: reconstruction MSE {mse:.3f}")
    info = {"mse": mse, "bits": int(model.bits), "reverse_target": reverse, "input": inp, "reconstruction": rec,
            "code": code}
    return fig, info


def samaf_bits(system: Any, clean_second: np.ndarray, sr: int, distortions_list: Sequence[tuple[str, Any]], *,
               seed: int = 0) -> tuple[Figure, dict[str, Any]]:
    """SAMAF's code of the first window (the model's length: 1 s or 0.5 s), clean and after each distortion, as rows
    of bits.

    Each distorted copy is made from the whole of ``clean_second`` (``distortions.distort(..., seed=seed)``), and
    its window starting at 0 s is hashed with the system's model, as a query window at that place would be (a copy
    shorter than 1 s, e.g. after ``tempo`` of a 1-s clip, is padded with silence). Each row is labelled with its
    Hamming distance to the clean code; unrelated codes differ in about half of the bits.

    Parameters
    ----------
    system : SAMAFSystem
        The system whose model hashes the windows.
    clean_second : np.ndarray, float, shape (n,)
        Mono samples at ``sr``, at least 1 s (only the first second is hashed; more gives the time-changing
        distortions real audio to fill it).
    sr : int
        Their sample rate.
    distortions_list : sequence of (name, level)
        The distortions, e.g. ``[("noise_white", 10), ("mp3", 64), ("pitch", 1.05)]``.
    seed : int
        Seed of the distortions.

    Returns
    -------
    fig : Figure
    info : dict
        ``labels`` (row names, ``"clean"`` first), ``bits`` (uint8, (rows, bits)), ``hamming`` (list of ints, 0
        first) and ``n_bits``.
    """
    from .hashing import hamming, unpack

    a = check_audio(clean_second, sr, name="clean_second", min_duration_s=1.0)
    n1 = int(sr)
    labels, codes = ["clean"], []
    versions = [a]
    for name, level in distortions_list:
        versions.append(distortions.distort(a, sr, name, level, seed))
        labels.append(f"{name} {level}")
    for y in versions:
        y = y[:n1] if y.size >= n1 else np.concatenate([y, np.zeros(n1 - y.size, np.float32)])
        packed, _ = system.fingerprint(y, sr)
        codes.append(packed[:1])
    packed = np.concatenate(codes)
    bits = unpack(packed, system.bits)
    dist = hamming(packed, packed[:1], pairwise=False).astype(int).tolist()
    n_bits = int(system.bits)
    fig = _new_figure(14, 1.2 + 0.45 * len(labels))
    ax = fig.add_subplot()
    ax.imshow(bits, aspect="auto", cmap=_BITS_CMAP, vmin=0, vmax=1, interpolation="nearest",
              extent=(-0.5, n_bits - 0.5, len(labels) - 0.5, -0.5))
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([f"{lab}: d = {d}" for lab, d in zip(labels, dist)])
    ax.set_xlabel(f"bit index (of {n_bits})")
    for r in range(1, len(labels)):                           # mark where each row differs from the clean code
        cols = np.flatnonzero(bits[r] != bits[0])
        ax.scatter(cols, np.full(cols.size, r), marker="|", s=200, color="tab:red", linewidths=2)
    ax.set_title(f"SAMAF {n_bits}-bit codes of the {system.features.window_s:g}-s window at 0 s; d = Hamming "
                 "distance to the clean code "
                 f"(red: differing bits; unrelated codes: about {n_bits // 2})\n"
                 + "; ".join(f"{lab}: d = {d}" for lab, d in zip(labels[1:], dist[1:])))
    info = {"labels": labels, "bits": bits, "hamming": dist, "n_bits": n_bits}
    return fig, info


__all__ = ["dejavu_constellation", "dejavu_pairs", "panako_triplets", "rafs_bits", "samaf_bits",
           "samaf_reconstruction", "spectrogram"]
