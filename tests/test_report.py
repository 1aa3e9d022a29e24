"""The report's tables: the headline with per-length thresholds, paired differences and storage; the README section
holds no date or timing."""

from __future__ import annotations

import re

import pandas as pd

from samaf_lib import report


def _overall() -> pd.DataFrame:
    return pd.DataFrame({"system": ["rafs", "samaf", "triplets", "panako"], "top1": [0.7, 0.8, 0.75, 0.6],
                         "top1_lo": [0.6, 0.7, 0.7, 0.5], "top1_hi": [0.8, 0.9, 0.8, 0.7],
                         "fpr": [0.05, 0.04, 0.03, 0.05], "f1": [0.8, 0.85, 0.83, 0.7]})


def _cost() -> pd.DataFrame:
    return pd.DataFrame({"system": ["samaf", "rafs", "panako", "triplets"],
                         "bits_per_second": [512.0, 2756.0, 800.0, 5000.0], "bytes_per_second": [84.0, 337.0, 50, 9],
                         "bytes_on_disk_per_second": [1400.0, 347.0, 60.0, 10.0]})


def _paired() -> pd.DataFrame:
    rows = [{"system": "samaf", "other": o, "metric": "top1", "difference": d, "lo": d - 0.05, "hi": d + 0.05}
            for o, d in (("rafs", 0.1), ("panako", 0.2), ("triplets", 0.05))]
    return pd.DataFrame(rows)


def test_headline_lists_samaf_first_with_paired_difference_pooled_top1_and_both_fprs():
    pooled = _overall().assign(top1=[0.6, 0.7, 0.5, 0.4])
    same = _overall().assign(fpr=[0.2, 0.1, 0.3, 0.4])
    t = report.headline_table(_overall(), _cost(), pooled=pooled, same_speaker=same, paired=_paired())
    assert list(t.system) == ["samaf", "rafs", "panako", "triplets"]
    row = t.set_index("system")
    assert row.loc["samaf", "top-1 [95% CI]"] == "0.800 [0.700, 0.900]"
    assert row.loc["rafs", "top-1, pooled threshold"] == "0.600"
    assert row.loc["panako", "FPR, same-voice negatives"] == "0.400"
    assert row.loc["rafs", "SAMAF minus system, top-1 [95% CI]"] == "+0.100 [0.050, 0.150]"
    assert row.loc["samaf", "SAMAF minus system, top-1 [95% CI]"] == "—"
    assert row.loc["rafs", "hash bits/s"] == "2,756" and row.loc["samaf", "file bytes/s"] == "1,400"
    plain = report.headline_table(_overall(), _cost())
    assert "FPR, same-voice negatives" not in plain.columns and "top-1, pooled threshold" not in plain.columns


def test_paired_table_is_one_row_per_length_one_column_per_system():
    p = pd.concat([_paired().assign(length_s=L) for L in (1.0, 5.0)], ignore_index=True)
    t = report.paired_table(p)
    assert list(t["query length"]) == ["1 s", "5 s"]
    assert list(t.columns[1:]) == ["rafs", "panako", "triplets"]
    assert report.paired_table(pd.DataFrame()).empty


def test_results_markdown_has_the_tables_and_no_date_or_timing():
    head = report.headline_table(_overall(), _cost(), paired=_paired())
    claims = pd.DataFrame({"claim": ["a"], "verdict": ["holds in part"], "evidence": ["x"]})
    params = {"data": {"source": "synthvox", "n_speakers": 60, "utterances_per_speaker": 8, "frac_outside": 0.2},
              "queries": {"per_condition": 8, "lengths": "1,2,3,5", "same_speaker_per_condition": 4},
              "hash": {"bits": 128, "loss": "mse+hash+entropy", "db_hop_s": 0.25}, "loss": {"form": "working"},
              "seed": 1}
    md = report.results_markdown(head, claims, {"protocol": {"test_queries": 10, "calibration_queries": 5,
                                                             "target_fpr": 0.05}}, params, ["docs/figures/a.png"],
                                 paired=report.paired_table(pd.concat([_paired().assign(length_s=1.0)])),
                                 fidelity=report.fidelity_table())
    assert "SAMAF minus system" in md and "holds in part" in md and "![a](docs/figures/a.png)" in md
    assert "panako" in md.lower() and "triplets" in md
    assert not re.search(r"\d{4}-\d{2}-\d{2}", md), "a date in the README section"
    assert "x real time" not in md and "query ms" not in md


def _ablation_rows(variants, val, test):
    return pd.DataFrame({"variant": variants, "bits": 128, "loss_terms": "mse+hash+entropy", "form": "working",
                         "cmn": 1, "balance": 0.1, "val_top1": val, "top1": test, "fpr": 0.05, "top1_1s": test,
                         "study_model": [1] + [0] * (len(variants) - 1)})


def test_full_ablation_is_shown_only_when_it_measured_this_run(tmp_path):
    default = _ablation_rows(["128-mse+hash+entropy", "random-128"], [0.8, 0.7], [0.77, 0.74])
    full, note = report.load_full_ablation(tmp_path, default)
    assert full.empty and "make repro-full" in note and "not been run" in note
    path = tmp_path / report.FULL_ABLATION
    path.parent.mkdir(parents=True)
    grid = _ablation_rows(["128-mse+hash+entropy", "128-mse", "literal-128", "random-128"], [0.8, 0.6, 0.5, 0.7],
                          [0.77, 0.6, 0.7, 0.74])
    grid.to_csv(path, index=False)
    full, note = report.load_full_ablation(tmp_path, default)
    assert list(full.variant) == list(grid.variant) and note == ""
    stale = grid.assign(top1=[0.70, 0.6, 0.7, 0.74])  # the study's model of another run
    stale.to_csv(path, index=False)
    full, note = report.load_full_ablation(tmp_path, default)
    assert full.empty and "128-mse+hash+entropy" in note and "make repro-full" in note
    params = {"ablation": {"profile": "default"}, "hash": {}, "data": {}, "queries": {}}
    claims = pd.DataFrame({"claim": ["a"], "verdict": ["holds"], "evidence": ["x"]})
    md = report.results_markdown(pd.DataFrame({"system": ["samaf"]}), claims, {}, params, [], ablation=grid,
                                 ablation_full=True)
    assert "the full grid, `make repro-full`: 1-s windows at 128 bits (4 variants)" in md and "literal-128" in md
    md = report.results_markdown(pd.DataFrame({"system": ["samaf"]}), claims, {}, params, [], ablation=default,
                                 ablation_note=note)
    assert "profile `default`" in md and note in md


def test_ablation_table_puts_the_study_model_first_and_says_how_long_each_trained():
    """The grid may have been run while another variant was the study's model: the name from params.yaml decides
    which row is the study's and printed first, not the grid's own column; the epochs column says how long each
    trained variant ran ("-" for the untrained random projection)."""
    grid = _ablation_rows(["128-mse+hash+entropy", "study-128-mse", "128-mse", "random-128"], [0.8, 0.9, 0.87, 0.7],
                          [0.77, 0.85, 0.83, 0.74]).assign(epochs_run=[None, 43, 30, None],
                                                           loss_terms=["mse+hash+entropy", "mse", "mse",
                                                                       "none (random)"])
    own = report.ablation_table(grid)
    assert own.variant.tolist() == ["128-mse+hash+entropy", "study-128-mse", "128-mse", "random-128"]
    study = report.study_variant({"hash": {"bits": 128, "loss": "mse"}})
    assert study == "study-128-mse"
    shown = report.ablation_table(grid, study)
    assert shown.variant.tolist() == ["study-128-mse", "128-mse+hash+entropy", "128-mse", "random-128"]
    assert shown["val top-1"].tolist() == ["0.900", "0.800", "0.870", "0.700"]
    assert shown["epochs"].tolist() == ["43", "?", "30", "-"]
    params = {"ablation": {"profile": "default", "epochs": 30}, "train": {"epochs": 60, "patience": 8},
              "hash": {"bits": 128, "loss": "mse"}, "data": {}, "queries": {}}
    claims = pd.DataFrame({"claim": ["a"], "verdict": ["holds"], "evidence": ["x"]})
    md = report.results_markdown(pd.DataFrame({"system": ["samaf"]}), claims, {}, params, [], ablation=grid,
                                 ablation_full=True)
    assert "| study-128-mse " in md and md.index("| study-128-mse ") < md.index("| 128-mse+hash+entropy ")
    assert "at 128 bits (3 variants)" in md, "the study's model is not one of the grid's variants"
    assert "8 epochs passed without a better validation top-1 (at most 60)" in md and "same budget, 30 epochs" in md


def test_sync_readme_copies_the_results_section_and_check_reports_a_stale_one(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text("## Results\n\n| samaf | 0.7 |\n\n![headline](figures/headline.png)\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Study\n\nintro\n\n{report.START}\nold numbers\n{report.END}\n\nafter\n")
    assert report.sync_readme(tmp_path, check=True) is False  # stale, and --check leaves it alone
    assert "old numbers" in readme.read_text()
    assert report.sync_readme(tmp_path) is False
    text = readme.read_text()
    assert "](docs/figures/headline.png)" in text and "old numbers" not in text
    assert text.startswith("# Study\n\nintro") and text.rstrip().endswith("after")
    assert report.sync_readme(tmp_path, check=True) is True


def test_committed_readme_holds_the_committed_results_section():
    """The README's results section is docs/results.md as the report stage wrote it (`make repro` copies it)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert report.sync_readme(root, check=True), "README.md is stale: run `python -m samaf_lib.report readme`"
