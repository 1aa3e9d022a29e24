"""The notebooks under nbval and a smoke `dvc repro` of the whole pipeline, each in a temporary copy of the study
(tests never write into the checkout's data/ or reports/)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _snapshot(root: Path) -> dict[str, str]:
    """md5 of every file under the pipeline's folders (data/, models/, reports/, docs/)."""
    import hashlib

    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for top in ("data", "models", "reports", "docs") for p in sorted((root / top).rglob("*")) if p.is_file()}


def _copy_study(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    shutil.copy2(ROOT / "tests" / "smoke_params.yaml", dest / "params.yaml")
    return dest


def _env(root: Path) -> dict:
    env = dict(os.environ, SAMAF_ROOT=str(root), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _keys(d: dict, prefix: str = "") -> set[str]:
    out = set()
    for k, v in d.items():
        out |= _keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
    return out


def test_smoke_profile_has_every_param():
    full = yaml.safe_load((ROOT / "params.yaml").read_text())
    smoke = yaml.safe_load((ROOT / "tests" / "smoke_params.yaml").read_text())
    assert _keys(full) == _keys(smoke)


def test_notebooks_are_stripped():
    import json

    for nb in NOTEBOOKS:
        cells = json.loads(nb.read_text())["cells"]
        dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or
                                                                                  c.get("execution_count"))]
        assert not dirty, f"{nb.name}: cells {dirty} carry outputs; run `make strip` before committing"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    """A copy of the study with the smoke profile, reproduced twice with `dvc repro`."""
    root = _copy_study(tmp_path_factory.mktemp("smoke"))
    env = _env(root)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    first = subprocess.run([str(BIN / "dvc"), "repro"], cwd=root, env=env, capture_output=True, text=True)
    second = subprocess.run([str(BIN / "dvc"), "repro"], cwd=root, env=env, capture_output=True, text=True)
    return {"root": root, "first": first, "second": second, "outputs": _snapshot(root)}


def test_smoke_dvc_repro(smoke):
    """The whole pipeline on the smoke profile writes every output; a second `dvc repro` has nothing to do."""
    root, first, second = smoke["root"], smoke["first"], smoke["second"]
    env = _env(root)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    meta = (root / "data" / "corpus" / "metadata.csv").read_text().splitlines()
    assert meta[0].startswith("utterance_id") and len(meta) > 1
    for out in ["data/queries/queries.csv", "data/clusters/train.npz", "data/features/stats.npz",
                "reports/results/samaf.csv", "reports/results/dejavu.csv", "reports/results/rafs.csv",
                "reports/results/panako.csv", "reports/results/triplets.csv", "reports/figures/accuracy_vs_length.png",
                "reports/figures/paired_differences.png", "reports/tables/identification_paired.csv",
                "reports/tables/dejavu_diagnosis.csv", "reports/06_report.html"]:
        assert (root / out).exists(), out
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert sorted(metrics["systems"]) == ["dejavu", "panako", "rafs", "samaf", "triplets"]
    assert metrics["protocol"]["negatives"] == "other_speaker"
    assert set(metrics["paired"]) == {"dejavu", "panako", "rafs", "triplets"}
    assert set(metrics["thresholds"]["samaf"]) == {"pooled", "1", "5"}  # one threshold per query length
    from samaf_lib.distortions import DISTORTIONS

    assert set(DISTORTIONS) | {"clean"} == set(metrics["protocol"]["distortions"])
    results_md = (root / "docs" / "results.md").read_text()
    assert "| samaf" in results_md and "](figures/headline.png)" in results_md
    for name in ("headline", "accuracy_vs_length", "paired_differences", "accuracy_vs_level", "samaf_ablation"):
        assert (root / "docs" / "figures" / f"{name}.png").exists(), name
    readme = subprocess.run([sys.executable, "-m", "samaf_lib.report", "readme"], cwd=root, env=env,
                            capture_output=True, text=True)
    assert readme.returncode == 0, readme.stderr
    assert "](docs/figures/headline.png)" in (root / "README.md").read_text()
    check = subprocess.run([sys.executable, "-m", "samaf_lib.report", "readme", "--check"], cwd=root, env=env,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    for name in metrics["systems"]:  # stored answers and run records hold no timing: same bytes on every rerun
        assert "seconds" not in (root / "reports" / "results" / f"{name}.csv").read_text().splitlines()[0]
        assert "x_realtime" not in json.loads((root / "reports" / "results" / f"{name}.json").read_text())
    html = (root / "reports" / "06_report.html").read_text()
    assert html.count("<img") >= 7, "every figure of the report must be inline in its HTML"
    headline = json.loads((root / "reports" / "headline.json").read_text())
    assert sorted(headline) == sorted(metrics["systems"]) and set(headline["samaf"]) == {"top1", "fpr", "f1"}
    # the ablation's row of the study's model reuses the hash stage's answers: it measures what the evaluation does
    import pandas as pd

    from samaf_lib.paths import STUDY_LOSS, window_suffix

    table = pd.read_csv(root / "reports" / "ablation" / "ablation.csv").set_index("variant")
    sfx = window_suffix(yaml.safe_load((root / "params.yaml").read_text())["model"]["window_s"])  # "-0.5s"
    study, rand = f"study-128-{STUDY_LOSS}{sfx}", f"random-128{sfx}"
    assert list(table.index) == [study, rand] and table.study_model.tolist() == [1, 0]
    assert table.window_s.tolist() == [0.5, 0.5]
    assert round(table.loc[study, "top1"], 4) == headline["samaf"]["top1"]
    assert table.loc[study, "epochs_run"] == 3 and pd.isna(table.loc[rand, "epochs_run"])
    for kind in ("by_length", "by_distortion"):
        assert sorted(p.stem for p in (root / "reports" / "plots" / kind).glob("*.csv")) == sorted(headline)
    shown = subprocess.run([str(BIN / "dvc"), "metrics", "show"], cwd=root, env=_env(root), capture_output=True,
                           text=True)
    assert shown.returncode == 0 and "samaf.top1" in shown.stdout, shown.stdout + shown.stderr
    assert max(len(line) for line in shown.stdout.splitlines()) < 260, shown.stdout
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Running stage" not in second.stdout, second.stdout


@pytest.mark.parametrize("notebook", [p.name for p in NOTEBOOKS])
def test_notebook_runs_under_nbval(smoke, notebook):
    """Each notebook, in pipeline order, on its smoke defaults (its parameters cell), after the smoke repro."""
    root = smoke["root"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "--nbval-kernel-name", "python3",
                           "-p", "no:cacheprovider", "-o", "addopts=", f"notebooks/{notebook}"], cwd=root,
                          env=_env(root), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def test_executed_notebooks_are_quiet_and_stamp_free(smoke):
    """What the pipeline keeps of each notebook shows no warning, progress bar or machine path, and no run time
    (its hash is in dvc.lock: a rerun must write the same bytes)."""
    from samaf_lib import executed

    notebooks = sorted((smoke["root"] / "reports" / "executed").glob("*.ipynb"))
    assert len(notebooks) >= len(NOTEBOOKS), [p.name for p in notebooks]
    for path in notebooks:
        text = path.read_text()
        assert executed.problems(json.loads(text)) == [], path.name
        for stamp in ('"start_time"', '"end_time"', '"duration"', '"iopub.execute_input"'):
            assert stamp not in text, (path.name, stamp)
    lock = yaml.safe_load((smoke["root"] / "dvc.lock").read_text())
    declared = {o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])}
    assert {f"reports/executed/{p.name}" for p in notebooks} <= declared


def test_notebooks_alone_leave_the_pipeline_outputs_untouched(smoke):
    """After every notebook ran on its own (the nbval tests above), data/, models/, reports/ and docs/ hold the
    same bytes as after the pipeline, and what the notebooks wrote is under scratch/."""
    root = smoke["root"]
    if not (root / "scratch" / "data" / "corpus" / "metadata.csv").exists():  # this test run alone
        test_notebook_runs_under_nbval(smoke, "01_data.ipynb")
    after = _snapshot(root)
    changed = sorted(k for k in set(after) | set(smoke["outputs"]) if after.get(k) != smoke["outputs"].get(k))
    assert not changed, changed[:20]
    assert (root / "scratch" / "data" / "corpus" / "metadata.csv").exists()
    status = subprocess.run([str(BIN / "dvc"), "status"], cwd=root, env=_env(root), capture_output=True, text=True)
    assert status.returncode == 0 and "changed" not in status.stdout, status.stdout


@pytest.mark.full
def test_repro_full_runs_the_grid_and_the_report_shows_it(smoke):
    """`make repro-full` (last: it rewrites outputs): the grid at ablation.full_bits, the report and README with
    it, and nothing left for `dvc repro` to do."""
    import pandas as pd

    from samaf_lib import ablation, executed

    root = smoke["root"]
    env = _env(root)
    venv = BIN.parent
    proc = subprocess.run(["make", "-o", f"{venv}/.installed", "repro-full", f"VENV={venv}"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    section = yaml.safe_load((root / "params.yaml").read_text())["ablation"]
    bits, windows = ablation.parse_bits(section["full_bits"]), ablation.parse_windows(section["full_windows"])
    table = pd.read_csv(root / "reports" / "ablation_full" / "ablation.csv")
    grid = ablation.variants("full", bits, windows=windows)
    assert list(table.variant[1:]) == list(grid) and table.study_model.tolist() == [1] + [0] * len(grid)
    assert table.top1.between(0, 1).all() and table.val_top1.between(0, 1).all()
    curves = pd.read_csv(root / "reports" / "ablation_full" / "curves.csv")
    assert set(curves.variant) == {n for n, v in grid.items() if v["kind"] == "train"}
    nb = json.loads((root / "reports" / "ablation_full" / "07_ablation.ipynb").read_text())
    assert executed.problems(nb) == [] and '"start_time"' not in json.dumps(nb)
    assert not list((root / "reports").glob(".ablation_full-*")), "a work folder left behind"
    sizes = f"{windows[0]:g}-s windows at " + ", ".join(f"{b} bits ({len(grid) // len(bits)} variants)" for b in bits)
    for doc in ("docs/results.md", "README.md"):
        text = (root / doc).read_text()
        assert f"the full grid, `make repro-full`: {sizes}" in text, doc
        assert f"literal-{bits[0]}{ablation.window_suffix(windows[0])}" in text, doc
    again = subprocess.run([str(BIN / "dvc"), "repro"], cwd=root, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout
