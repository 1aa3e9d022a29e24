"""The study's conclusions: headline numbers rebuilt exactly from finer tables, and claim verdicts that follow from
paired intervals (and, for claim c, from the code size and the windows stored per second)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from joined_tables import two_systems as _two_systems

from samaf_lib import claims
from samaf_lib import identification as idn


def test_headline_rebuilds_overall_numbers_from_finer_rows_and_writes_valid_json(tmp_path):
    df, thr = _two_systems()
    fine = idn.metrics_table(df, thr, n_boot=100)
    overall = idn.metrics_table(df, thr, by=("system",), n_boot=100)
    stats = {"samaf": {"bits_per_second": 256.0, "bytes": 3200, "seconds": 100.0, "x_realtime": 900.0,
                       "params": {"bits": 128}},
             "dejavu": {"bits_per_second": 5000.0, "bytes": 64000, "seconds": 100.0}}
    h_fine = claims.headline(fine, stats)
    h_all = claims.headline(overall, stats, distortion_rows=fine)
    for s in ("samaf", "dejavu"):
        ref = overall[overall["system"] == s].iloc[0]
        for k in ("top1", "fpr", "f1"):
            assert h_fine["systems"][s][k] == pytest.approx(ref[k])
        assert h_all["systems"][s]["top1_lo"] == pytest.approx(ref["top1_lo"])
    assert h_fine["systems"]["samaf"]["top1_lo"] is None  # no interval from finer rows
    assert h_all["systems"]["samaf"]["bytes_per_second"] == pytest.approx(32.0)
    assert h_all["systems"]["samaf"]["bits"] == 128 and h_all["systems"]["dejavu"]["x_realtime"] is None
    assert set(h_all["top1_by_distortion"]["samaf"]) == {"clean", "noise_white", "pitch"}
    h_all["systems"]["samaf"]["nan_value"] = float("nan")
    path = tmp_path / "reports" / "metrics.json"
    claims.write_metrics(path, h_all)
    back = json.loads(path.read_text())  # strict JSON: no NaN literals
    assert "NaN" not in path.read_text()
    assert back["systems"]["samaf"]["nan_value"] is None
    assert back["systems"]["dejavu"]["top1"] == pytest.approx(h_all["systems"]["dejavu"]["top1"])


def test_headline_carries_same_speaker_fpr_paired_differences_and_storage():
    df, thr = _two_systems()
    df["kind"] = np.where(df["positive"] == 1, "positive", "other_speaker")
    overall = idn.metrics_table(df, thr, by=("system",), n_boot=50)
    same = overall.assign(fp_neg=(overall["n_neg"] * np.array([0.2, 0.4])).astype(int))  # dejavu, samaf
    paired = idn.paired_differences(df, thr, system="samaf", n_boot=50)
    stats = {"samaf": {"bits_per_second": 512.0, "bytes": 3200, "bytes_on_disk": 9000, "seconds": 100.0}}
    h = claims.headline(overall, stats, same_speaker_rows=same, paired=paired)
    assert h["systems"]["dejavu"]["fpr_same_speaker"] == 0.2 and h["systems"]["samaf"]["fpr_same_speaker"] == 0.4
    assert h["systems"]["samaf"]["bytes_on_disk"] == 9000
    d = h["paired"]["dejavu"]["top1"]
    row = paired[(paired["other"] == "dejavu") & (paired["metric"] == "top1")].iloc[0]
    assert d["difference"] == pytest.approx(row["difference"]) and d["lo"] == pytest.approx(row["lo"])


# ---------------------------------------------------------------------------------------------------------------
# The paper's claims
# ---------------------------------------------------------------------------------------------------------------

def _summary(top1: dict, paired: dict | None = None, cls: dict | None = None, cls_paired: dict | None = None,
             bps: float = 128.0, bits: float | None = 128) -> dict:
    systems = {k: {"top1": v, "fpr": 0.01, "bits_per_second": 1000.0} for k, v in top1.items()}
    if "samaf" in systems:
        systems["samaf"].update(bits_per_second=bps, bits=bits)
    out = {"systems": systems}
    if paired is not None:
        out["paired"] = {b: {"top1": {"difference": (lo + hi) / 2, "lo": lo, "hi": hi}} for b, (lo, hi) in
                         paired.items()}
    if cls is not None:
        out["classification"] = cls
        out["classification_chance"] = {t: 0.1 for t in next(iter(cls.values()))}
    if cls_paired is not None:
        out["classification_paired"] = {b: {t: {"difference": (lo + hi) / 2, "lo": lo, "hi": hi}
                                            for t, (lo, hi) in tasks.items()} for b, tasks in cls_paired.items()}
    return out


def _verdicts(summary: dict) -> dict:
    t = claims.paper_claims(summary)
    assert list(t.columns) == ["claim", "statement", "evidence", "verdict"]
    assert all(isinstance(e, str) and e for e in t["evidence"])
    return dict(zip(t["claim"], t["verdict"]))


TOP = {"samaf": 0.8, "dejavu": 0.5, "rafs": 0.6, "panako": 0.7}


def test_identification_verdict_follows_the_paired_intervals_not_the_point_values():
    above = {"dejavu": (0.2, 0.4), "rafs": (0.1, 0.3), "panako": (0.01, 0.2)}
    assert _verdicts(_summary(TOP, above))["a"] == "holds"
    # SAMAF's point top-1 is the highest, but the interval against Panako includes 0: not shown against Panako
    mixed = {**above, "panako": (-0.05, 0.2)}
    assert _verdicts(_summary(TOP, mixed))["a"] == "holds in part"
    none = {b: (-0.1, 0.05) for b in above}
    assert _verdicts(_summary(TOP, none))["a"] == "does not hold"
    assert _verdicts(_summary(TOP))["a"] == "not measured"  # no intervals, no verdict
    assert _verdicts(_summary({"dejavu": 0.5}))["a"] == "not measured"
    ev_text = claims.paper_claims(_summary(TOP, mixed)).set_index("claim").loc["a", "evidence"]
    assert "panako +0.075 [-0.050, 0.200]" in ev_text


def test_classification_verdict_follows_paired_intervals_over_every_task_and_baseline():
    cls = {"samaf": {"speaker": 0.8, "gender": 0.9}, "dejavu": {"speaker": 0.3, "gender": 0.6},
           "mfcc": {"speaker": 0.95, "gender": 0.99}}
    win = {"dejavu": {"speaker": (0.3, 0.6), "gender": (0.1, 0.4)}}
    assert _verdicts(_summary(TOP, cls=cls, cls_paired=win))["b"] == "holds"
    part = {"dejavu": {"speaker": (0.3, 0.6), "gender": (-0.1, 0.4)}}
    assert _verdicts(_summary(TOP, cls=cls, cls_paired=part))["b"] == "holds in part"
    lose = {"dejavu": {"speaker": (-0.3, 0.1), "gender": (-0.1, 0.0)}}
    assert _verdicts(_summary(TOP, cls=cls, cls_paired=lose))["b"] == "does not hold"
    assert _verdicts(_summary(TOP, cls=cls))["b"] == "not measured"
    assert _verdicts(_summary(TOP))["b"] == "not measured"
    assert "mfcc" in claims.paper_claims(_summary(TOP, cls=cls, cls_paired=win)).set_index("claim").loc["b", "evidence"]


def test_bits_claim_holds_only_for_one_128_or_256_bit_code_per_second():
    assert _verdicts(_summary(TOP, bps=128.0, bits=128))["c"] == "holds"
    assert _verdicts(_summary(TOP, bps=256.0, bits=256))["c"] == "holds"
    assert _verdicts(_summary(TOP, bps=128.5, bits=128))["c"] == "holds"
    # a 128-bit code every 0.5 s stores 256 bits per second: the number matches 256, the claim does not
    assert _verdicts(_summary(TOP, bps=256.0, bits=128))["c"] == "holds in part"
    assert _verdicts(_summary(TOP, bps=512.0, bits=128))["c"] == "holds in part"
    assert _verdicts(_summary(TOP, bps=64.0, bits=64))["c"] == "does not hold"
    assert _verdicts(_summary(TOP, bps=float("nan")))["c"] == "not measured"


def test_headline_metrics_are_top1_fpr_f1_per_system_rounded():
    summary = {"systems": {"samaf": {"top1": 0.123456, "fpr": 0.05, "f1": None, "bytes": 9},
                           "rafs": {"top1": 0.7, "fpr": 0.01, "f1": 0.8}}}
    h = claims.headline_metrics(summary)
    assert list(h) == ["rafs", "samaf"]
    assert h["samaf"] == {"top1": 0.1235, "fpr": 0.05, "f1": None}
