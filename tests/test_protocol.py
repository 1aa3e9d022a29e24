"""The protocol's stored outputs hold answers, never timings: the same run writes the same bytes on any machine."""

from __future__ import annotations

import json

import pandas as pd

from samaf_lib import protocol, queries, systems
from samaf_lib.audio import write_audio
from samaf_lib.io import write_json

SR = 16000


def _run(tmp_path, speech_bank):
    refs = dict(list(speech_bank.items())[:4])
    meta = pd.DataFrame([{"utterance_id": k, "speaker_id": "s", "split": "test", "path": f"{k}.wav",
                          "duration_s": v.size / SR} for k, v in refs.items()])
    for k, v in refs.items():
        write_audio(tmp_path / f"{k}.wav", v, SR)
    plan = queries.plan_queries(meta.assign(split=["test", "test", "test", "unseen"]), [], [2.0], 2, seed=1)
    man = queries.render_queries(plan, tmp_path, meta, tmp_path / "q", sr=SR, progress=False)
    fp = systems.get("rafs")
    info = protocol.index_references(fp, meta[meta.utterance_id != meta.utterance_id.iloc[-1]], tmp_path, SR,
                                     progress=False)
    results = protocol.run_queries(fp, man, tmp_path / "q", SR, progress=False, min_score=0.0)
    return info, results, fp


def test_results_and_run_record_hold_no_timing(tmp_path, speech_bank):
    info, results, fp = _run(tmp_path, speech_bank)
    assert "seconds" in results.columns and info["x_realtime"] > 0  # measured, in memory
    protocol.write_results(tmp_path / "r.csv", results)
    stored = pd.read_csv(tmp_path / "r.csv")
    assert list(stored.columns) == protocol.RESULT_COLUMNS and "seconds" not in stored.columns
    back = protocol.read_results(tmp_path / "r.csv")
    assert list(back.query_id) == list(results.query_id)
    run = protocol.summarise_run(results, info, fp.stats())
    assert not set(protocol.TIMING_KEYS) & set(run) and run["queries"] == len(results)
    write_json(tmp_path / "run.json", run)
    assert "x_realtime" not in json.loads((tmp_path / "run.json").read_text())
    speed = protocol.run_speed(results, info)
    assert set(speed) == set(protocol.TIMING_KEYS) and speed["query_ms_median"] > 0


def test_two_runs_write_the_same_bytes(tmp_path, speech_bank):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        info, results, fp = _run(d, speech_bank)
        protocol.write_results(d / "r.csv", results)
        write_json(d / "run.json", protocol.summarise_run(results, info, fp.stats()))
    assert (a / "r.csv").read_bytes() == (b / "r.csv").read_bytes()
    assert (a / "run.json").read_bytes() == (b / "run.json").read_bytes()
