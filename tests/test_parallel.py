"""The pipeline's per-file work on Dask (``samaf_lib.parallel``): a LocalCluster of 2 workers gives the serial
answers, row for row and in manifest order, for a baseline and for SAMAF, and :func:`map_ordered` the serial
results in input order; bad addresses are named. (The data stage's queries and clusters on Dask:
``tests/test_queries_clusters.py``.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import make_music
from samaf_lib import parallel, protocol, systems
from samaf_lib.audio import write_audio
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.model import SAMAF
from samaf_lib.systems.samaf import SAMAFSystem

SR = 16000


def _queries(tmp_path, sources: dict[str, np.ndarray], n: int) -> tuple[pd.DataFrame, object]:
    """``n`` noisy excerpts of the sources and of unrelated audio, written as a query folder with a manifest."""
    qdir = tmp_path / "queries"
    qdir.mkdir()
    rng = np.random.default_rng(5)
    names = list(sources)
    rows = []
    for i in range(n):
        if i % 4 == 3:
            x = make_music(500 + i, 3.0)
        else:
            src = sources[names[i % len(names)]]
            start = int(rng.integers(0, src.size - 3 * SR))
            x = src[start:start + int(rng.choice([1, 2, 3])) * SR]
        x = (x + 0.01 * rng.standard_normal(x.size)).astype(np.float32)
        write_audio(qdir / f"q{i:03d}.wav", x, SR)
        rows.append({"query_id": f"q{i:03d}", "path": f"q{i:03d}.wav"})
    return pd.DataFrame(rows), qdir


@pytest.mark.parametrize("name", ["rafs", "samaf"])
def test_dask_answers_equal_the_serial_answers(tmp_path, speech_bank, name, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "CHUNK", 7)  # several chunks, the last one short
    if name == "samaf":
        torch.manual_seed(0)
        model = SAMAF(bits=64, cmn=True)
        st = Standardiser.fit(np.concatenate([mfcc(a, SR) for a in list(speech_bank.values())[:4]]), cmn=True)
        model.set_standardiser(st.mean, st.std)
        system = SAMAFSystem(model=model, bits=64, db_hop_s=0.25)
        sources = dict(list(speech_bank.items())[:5])
    else:
        system = systems.get("rafs")
        sources = {f"m{i}": make_music(i, 10.0) for i in range(5)}
    for rid, a in sources.items():
        system.add(rid, a, SR)
    saved = tmp_path / f"db.{name}"
    system.save(saved)
    manifest, qdir = _queries(tmp_path, sources, 30)
    serial = parallel.run_queries(system, saved, manifest, qdir, SR, min_score=0.0, dask="", progress=False)
    on_dask = parallel.run_queries(system, saved, manifest, qdir, SR, min_score=0.0, dask="local:2")
    cols = protocol.RESULT_COLUMNS
    assert list(on_dask.query_id) == list(manifest.query_id)
    pd.testing.assert_frame_equal(serial[cols].reset_index(drop=True), on_dask[cols].reset_index(drop=True))
    assert (serial.ref_id != "").sum() >= 15  # the excerpts are found: the comparison is of real answers


def test_bad_addresses_are_named(tmp_path):
    with pytest.raises(ValueError, match="parallel.dask"):
        parallel.check_address("scheduler:8786")
    with pytest.raises(ValueError, match="parallel.dask"):
        parallel.check_address(4)
    assert parallel.check_address("  ") == ""
    with pytest.raises(ValueError, match="local:N"):
        parallel.dask_client("local:zero")
    with pytest.raises(ValueError, match="parallel.dask.*tcp://"):
        parallel.dask_client("scheduler:8786")
    with pytest.raises(FileNotFoundError, match="save the database"):
        parallel.run_queries(systems.get("rafs"), tmp_path / "missing.db", pd.DataFrame(columns=["query_id", "path"]),
                             tmp_path, SR, dask="local:1")


def _square_plus_index(item: tuple[int, float]) -> tuple[int, float]:
    i, x = item
    return i, float(x) ** 2 + i


def test_map_ordered_keeps_the_input_order_everywhere():
    items = [(i, 0.5 * (20 - i)) for i in range(20)]
    expected = [_square_plus_index(it) for it in items]
    assert parallel.map_ordered(_square_plus_index, items) == expected
    assert parallel.map_ordered(_square_plus_index, items, jobs=2, chunksize=3) == expected
    assert parallel.map_ordered(_square_plus_index, [], jobs=2) == []
    pytest.importorskip("distributed")
    assert parallel.map_ordered(_square_plus_index, items, dask="local:2", chunksize=3) == expected
