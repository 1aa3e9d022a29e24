"""Files that must not change between runs, the validation task's threshold rule, and the ablation's references."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from samaf_lib import ablation, clusters
from samaf_lib.distortions import conditions
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.io import write_npz
from samaf_lib.systems.samaf import SAMAFSystem
from samaf_lib.validation import threshold_at_fpr

SR = 16000


def test_npz_files_are_byte_identical_across_runs(tmp_path):
    """np.savez stamps each member with the clock; our writer does not, so DVC sees the same file twice."""
    arrays = {"X": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array(["a", "bb"])}
    write_npz(tmp_path / "a.npz", **arrays)
    time.sleep(2.1)  # zip timestamps have a 2-s resolution
    write_npz(tmp_path / "b.npz", **arrays)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as f:
        assert f["X"].tolist() == arrays["X"].tolist() and f["ids"].tolist() == ["a", "bb"]
    with pytest.raises(ValueError, match="object"):
        write_npz(tmp_path / "c.npz", bad=np.array([{"a": 1}], dtype=object))
    assert not (tmp_path / "c.npz").exists()


def test_hard_conditions_and_their_weights():
    assert clusters.is_hard("noise_white", 10) and not clusters.is_hard("noise_white", 20)
    assert clusters.is_hard("babble", 20) and clusters.is_hard("reverb", "large")
    assert not clusters.is_hard("reverb", "small")
    assert clusters.is_hard("speed", 1.1) and clusters.is_hard("pitch", 0.9) and not clusters.is_hard("pitch", 0.95)
    assert clusters.is_hard("telephone", "default") and not clusters.is_hard("mp3", 32)
    conds = conditions("all")
    p = clusters.condition_weights(conds, 3.0)
    hard = np.array([clusters.is_hard(n, lv) for n, lv in conds])
    assert p.sum() == pytest.approx(1.0) and np.allclose(p[hard], 3 * p[~hard][0])
    assert np.allclose(clusters.condition_weights(conds, 1.0), 1 / len(conds))
    with pytest.raises(ValueError, match="hard_weight"):
        clusters.condition_weights(conds, 0)


def test_threshold_at_fpr():
    neg = np.array([0.9, 0.1, 0.5, 0.3, -np.inf, 0.2, 0.4, 0.6, 0.7, 0.8])
    assert threshold_at_fpr(neg, 0.1) == 0.8  # one negative (0.9) may pass: accept above 0.8
    assert threshold_at_fpr(neg, 0.0) == 0.9
    assert np.mean(neg > threshold_at_fpr(neg, 0.25)) <= 0.25
    assert threshold_at_fpr(np.array([]), 0.05) == -np.inf


def test_random_projection_is_seeded_and_identifies_an_exact_copy(speech_bank):
    clips = list(speech_bank.items())[:6]
    windows = np.concatenate([mfcc(a, SR) for _, a in clips])
    st = Standardiser.fit(windows, cmn=True)
    a = ablation.RandomProjection(bits=64, seed=3)
    b = ablation.RandomProjection(bits=64, seed=3)
    c = ablation.RandomProjection(bits=64, seed=4)
    for m in (a, b, c):
        m.set_standardiser(st.mean, st.std)
    za, zb, zc = (m.hash_windows(windows[:20]) for m in (a, b, c))
    assert np.array_equal(za, zb) and not np.array_equal(za, zc)
    assert 0.3 < float((za > 0).mean()) < 0.7
    fp = SAMAFSystem(model=a, bits=64, min_score=0.0)
    for ref, audio in clips:
        fp.add(ref, audio, SR)
    ref, audio = clips[2]
    m = fp.identify(audio[int(0.73 * SR): int(3.73 * SR)], SR)
    assert m.ref_id == ref and abs(m.offset_s - 0.73) <= 0.1


def test_ablation_grids():
    full = ablation.variants("full")
    assert len([v for v in full.values() if v["kind"] == "train" and v["form"] == "working"]) == 12
    assert {"literal-128", "literal-256", "random-128", "random-256"} <= set(full)
    assert full["128-mse+hash+entropy-plain"]["cmn"] is False and full["128-mse"]["cmn"] is True
    half = ablation.variants("full", (128,))
    assert len(half) == 8 and all(v["bits"] == 128 for v in half.values())
    # the default trains nothing: the random projection at the study's bits beside the study's model
    assert ablation.variants("default") == {"random-128": {"kind": "random", "bits": 128, "cmn": True,
                                                           "window_s": 1.0}}
    assert set(ablation.variants("default", study_bits=64)) == {"random-64"}
    with pytest.raises(ValueError, match="ablation.profile"):
        ablation.variants("huge")


@pytest.mark.parametrize("text", ["", "128,abc", "12", "0", "-8", "128;256"])
def test_full_bits_must_be_multiples_of_8(text):
    with pytest.raises(ValueError, match="ablation.full_bits"):
        ablation.parse_bits(text)


def test_full_bits_parse():
    assert ablation.parse_bits("128, 256") == (128, 256)
    assert ablation.parse_bits(128) == (128,)
    assert ablation.parse_bits("256,128,256") == (256, 128)
    assert ablation.parse_bits([128, "256"]) == (128, 256) and ablation.parse_bits((64,)) == (64,)
    assert list(ablation.variants("full", (64,))) == list(ablation.variants("full", "64"))
    with pytest.raises(ValueError, match="--bits"):
        ablation.parse_bits([128, 100], key="--bits")


def test_study_loss_is_one_setting():
    """The checkpoint the CLI, the SAMAF system and the benchmarks load is the one the pipeline trains and
    evaluates: params.yaml's hash.loss, trained by the train matrix, equals samaf_lib.paths.STUDY_LOSS."""
    import yaml

    from samaf_lib import cli, paths
    from samaf_lib.systems import samaf

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert params["hash"]["loss"] == paths.STUDY_LOSS and paths.STUDY_LOSS in params["train"]["losses"]
    assert params["hash"]["bits"] in params["train"]["bits"]
    expect = f"models/samaf-{params['hash']['bits']}-{params['hash']['loss']}/best.pt"
    assert cli.DEFAULT_MODEL == expect == samaf.DEFAULT_CHECKPOINT.format(bits=params["hash"]["bits"])


def test_notebook_defaults_name_the_study_loss():
    """Run on their own (JupyterLab, nbval), the training, hashing and ablation notebooks default to the study's
    loss terms, so that after `make repro` they find the model the pipeline trained."""
    import json

    from samaf_lib import paths

    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name, key in [("02_train.ipynb", "loss_terms"), ("03_hash.ipynb", "loss_terms"),
                      ("07_ablation.ipynb", "study_loss")]:
        cells = json.loads((root / name).read_text())["cells"]
        source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        assert f'{key} = "{paths.STUDY_LOSS}"' in source, name


def test_full_grid_takes_the_ablation_stage_settings():
    """`make repro-full` passes the notebook every parameter the ablation stage passes, filled in from params.yaml."""
    import json

    import yaml

    root = Path(__file__).resolve().parents[1]
    stage = yaml.safe_load((root / "dvc.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    args = ablation.stage_parameters(stage, params)
    assert args["profile"] == params["ablation"]["profile"] and args["output"] == "."
    assert args["epochs"] == str(params["ablation"]["epochs"]) and args["study_loss"] == params["hash"]["loss"]
    assert args["study_epochs"] == str(params["train"]["epochs"])
    assert args["temperature"] == str(params["loss"]["temperature"])
    assert not any("$" in v for v in args.values())
    cell = next(c for c in json.loads((root / "notebooks" / "07_ablation.ipynb").read_text())["cells"]
                if "parameters" in c["metadata"].get("tags", []))
    declared = {line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines() if "=" in line}
    assert set(args) | {"full_bits", "tag"} <= declared, set(args) - declared
    with pytest.raises(KeyError, match="train.epochs"):
        ablation.stage_parameters(stage, {**params, "train": {}})


def test_the_study_row_reuses_the_hash_stage_answers_only_for_its_model_and_settings(tmp_path):
    """The ablation measures the study's model on the hash stage's answers when that stage ran this checkpoint with
    these search settings, and answers the queries itself otherwise."""
    import json

    import pandas as pd

    from samaf_lib import protocol

    settings = dict(bits=128, loss_terms="mse", db_hop_s=0.1, query_hop_s=0.1, k=10, verify=5)
    assert ablation.study_results(tmp_path, **settings) is None  # the hash stage has not run
    res = tmp_path / "reports" / "results"
    res.mkdir(parents=True)
    answers = pd.DataFrame({c: ["q1"] if c == "query_id" else [0.5] for c in protocol.RESULT_COLUMNS})
    protocol.write_results(res / "samaf.csv", answers)
    params = {"checkpoint": "models/samaf-128-mse/best.pt", "bits": 128, "db_hop_s": 0.1, "query_hop_s": 0.1,
              "k": 10, "verify": 5, "max_distance": 64}
    (res / "samaf.json").write_text(json.dumps({"params": params}))
    got = ablation.study_results(tmp_path, **settings)
    assert got is not None and got.query_id.tolist() == ["q1"]
    for key, other in [("db_hop_s", 0.5), ("k", 5), ("bits", 256), ("loss_terms", "mse+hash")]:
        assert ablation.study_results(tmp_path, **{**settings, key: other}) is None, key
    assert ablation.study_variant(128, "mse") == "study-128-mse"


def test_which_variant_is_the_study_model():
    """The study's row is the train stage's model; the grid's variant with the study's settings is that model only
    when the two budgets are equal; no other variant is."""
    study = {"bits": 128, "loss_terms": "mse", "form": "working", "cmn": True, "hash_weight": 1.0,
             "entropy_weight": 0.1, "balance_weight": 0.1, "window_s": 1.0}
    grid = ablation.variants("full", (128, 256))
    same = grid["128-mse"]
    assert ablation.variant_settings(study, same) == study
    assert ablation.uses_study_model(study, {"kind": "study", **study}, epochs=30, study_epochs=60)
    assert ablation.uses_study_model(study, same, epochs=60, study_epochs=60)
    assert not ablation.uses_study_model(study, same, epochs=30, study_epochs=60)  # another budget: trained anew
    for name in ("128-mse-plain", "128-mse+hash", "literal-128", "256-mse", "random-128"):
        assert not ablation.uses_study_model(study, grid[name], epochs=60, study_epochs=60), name
    assert ablation.variant_settings(study, grid["literal-128"])["form"] == "literal"


def test_random_reference_is_standardised_on_the_clean_training_windows():
    rng = np.random.default_rng(0)
    train_X = rng.normal(3.0, 2.0, (6, 3, 100, 13)).astype(np.float32)
    m = ablation.random_model(128, False, 7, train_X)
    assert isinstance(m, ablation.RandomProjection) and m.bits == 128 and not m.config["cmn"]
    stats = Standardiser.fit(train_X[:, 0], cmn=False)
    assert np.allclose(m.mean.numpy(), stats.mean) and np.allclose(m.std.numpy(), stats.std)
    again = ablation.random_model(128, False, 7, train_X)
    assert torch.equal(m.projection, again.projection)  # seeded
    assert not torch.equal(m.projection, ablation.random_model(128, False, 8, train_X).projection)


def test_full_grid_needs_the_pipeline_first(tmp_path, capsys):
    import shutil

    root = Path(__file__).resolve().parents[1]
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(root / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        ablation.run_full(tmp_path)
    with pytest.raises(ValueError, match="--bits"):
        ablation.run_full(tmp_path, bits="100")
    assert not (tmp_path / "reports" / "ablation_full").exists()


def test_part_of_the_grid_can_be_run_and_its_rows_merged(tmp_path):
    import shutil

    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(root / name, tmp_path / name)

    full = ablation.variants("full", (128, 256))
    assert list(ablation.select_variants(full, "")) == list(full)
    assert list(ablation.select_variants(full, "random-256, 256-mse")) == ["256-mse", "random-256"]
    assert list(ablation.select_variants(full, ["literal-128"])) == ["literal-128"]
    with pytest.raises(ValueError, match="512-mse"):
        ablation.select_variants(full, "256-mse,512-mse")
    with pytest.raises(ValueError, match="--only"):
        ablation.run_full(tmp_path, bits="128", only="256-mse")  # not in the 128-bit grid: refused before any work

    def table(rows):
        return pd.DataFrame(rows, columns=["variant", "val_top1", "top1", "bits"])

    old = table([("128-mse", 0.8, 0.7, 128), ("128-mse+hash", 0.6, 0.5, 128), ("random-128", 0.5, 0.4, 128)])
    new = table([("128-mse", 0.8, 0.7, 128), ("256-mse", 0.9, 0.8, 256), ("random-256", 0.6, 0.5, 256)])
    merged = ablation.merge_tables(old, new)
    assert merged.variant.tolist() == ["128-mse", "128-mse+hash", "random-128", "256-mse", "random-256"]
    assert merged.set_index("variant").loc["256-mse", "top1"] == 0.8
    # the run's rows win over the earlier ones of the same variant
    assert ablation.merge_tables(old, table([("128-mse", 0.8, 0.7, 128), ("random-128", 0.1, 0.1, 128)])
                                 ).set_index("variant").loc["random-128", "top1"] == 0.1

    def kept_after(run_rows):
        dest = tmp_path / "dest"
        dest.mkdir(exist_ok=True)
        table(run_rows).to_csv(dest / "ablation.csv", index=False)
        ablation._keep_unmeasured(dest, {"ablation.csv": old}, study="128-mse")
        return pd.read_csv(dest / "ablation.csv").variant.tolist()

    # the study's model measured as before: the rows this run did not measure stay
    assert kept_after([("128-mse", 0.8, 0.7, 128), ("256-mse", 0.9, 0.8, 256)]) == [
        "128-mse", "128-mse+hash", "random-128", "256-mse"]
    # another study model or data set: the earlier rows describe another run and go
    assert kept_after([("128-mse", 0.81, 0.7, 128), ("256-mse", 0.9, 0.8, 256)]) == ["128-mse", "256-mse"]


def test_the_merged_grid_follows_the_grid_order():
    """Rows measured in several partial runs end in one order: the study's model, then the grid, 128 bits first."""
    import pandas as pd

    order = ablation.table_order("study-128-mse", [256, 128, 128])
    assert order[:3] == ["study-128-mse", "128-mse", "128-mse-plain"] and order[-1] == "random-256"
    assert order.index("literal-128") < order.index("random-128") < order.index("256-mse")
    cols = ["variant", "epoch", "bits"]
    old = pd.DataFrame([("random-256", 0, 256), ("study-128-mse", 0, 128), ("256-mse", 1, 256), ("256-mse", 2, 256),
                        ("my-own", 0, 64)], columns=cols)
    new = pd.DataFrame([("256-mse+hash", 1, 256), ("256-mse+hash", 2, 256), ("128-mse", 1, 128)], columns=cols)
    merged = ablation.merge_tables(old, new, order=order)
    assert list(zip(merged.variant, merged.epoch)) == [
        ("study-128-mse", 0), ("128-mse", 1), ("256-mse", 1), ("256-mse", 2), ("256-mse+hash", 1),
        ("256-mse+hash", 2), ("random-256", 0), ("my-own", 0)]


def test_cmn_removes_a_fixed_channel():
    """A constant added to every cepstral frame (a fixed filter, a gain) leaves the standardised window unchanged."""
    from samaf_lib.model import SAMAF

    g = np.random.default_rng(0)
    x = g.standard_normal((4, 100, 13)).astype(np.float32)
    shift = g.standard_normal(13).astype(np.float32)
    m = SAMAF(bits=16, cmn=True)
    assert np.allclose(m.standardise(x), m.standardise(x + shift), atol=1e-5)
    torch.manual_seed(0)
    m2 = SAMAF(bits=16, cmn=False)
    assert not np.allclose(m2.standardise(x), m2.standardise(x + shift), atol=1e-3)
