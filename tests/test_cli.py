"""The ``samaf`` command: index a folder, resume, skip broken files, identify, describe, and its error paths.

Every system is driven through ``samaf_lib.cli.main`` in-process on 10 generated speech files of 6 s; one test runs
the installed console script.

Three settings are the test's, not the systems' defaults, and the reasons are measured, not guessed:

* Dejavu is indexed with ``min_score=50``. Generated speech repeats the same words in the same eSpeak voices, so
  Dejavu aligns 10 to 100 hashes of a 5-s clip that is in no reference; a true 20-dB excerpt aligns about 200.
* SAMAF runs on an *untrained* model (random weights, standardisation fitted on the files), saved with
  ``save_checkpoint`` where the pipeline leaves its trained model, with the system's default parameters. Untrained
  hashes flip 15-30 of 128 bits under noise at 20 dB (half of such excerpts are missed), so for SAMAF the query is
  a near-exact copy (the same excerpt with noise at 60 dB); the 20-dB case needs a trained model (``make repro``).
* Panako (the 2014 design) keeps one triplet per event point, chosen among partners up to 4 s later, so a 5-s
  query keeps few of its reference's triplets: the excerpt aligned 6 hits at 60 dB and none at 20 dB. Its query
  is the 60-dB copy too, and its offset is resolved to the 3-frame bin (104 ms) of its histogram: 0.15 s allowed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_speech

from samaf_lib import cli
from samaf_lib.audio import write_audio

SR = 16000
N_FILES = 10
TARGET = 3  # the file the queries come from
QUERY_START_S = 1.0


def _ref_id(i: int) -> str:
    """Files 0, 3, 6, 9 live in a subfolder, so reference ids are relative paths."""
    return f"sub/s{i:02d}.wav" if i % 3 == 0 else f"s{i:02d}.wav"


def _noisy(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size)
    scale = np.sqrt(np.mean(x.astype(np.float64) ** 2) / 10 ** (snr_db / 10) / np.mean(noise ** 2))
    return (x + scale * noise).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """10 speech files (+ a broken one) under ``audio/``, queries beside it."""
    root = tmp_path_factory.mktemp("cli")
    audio_dir = root / "audio"
    speech = [make_speech(i, 6.0) for i in range(N_FILES)]
    for i, x in enumerate(speech):
        write_audio(audio_dir / _ref_id(i), x, SR)
    (audio_dir / "broken.wav").write_bytes(np.random.default_rng(0).bytes(4000))
    (audio_dir / "notes.txt").write_text("not audio")
    excerpt = speech[TARGET][int(QUERY_START_S * SR): int((QUERY_START_S + 5.0) * SR)]
    write_audio(root / "noisy20.wav", _noisy(excerpt, 20.0, 1), SR)
    write_audio(root / "noisy60.wav", _noisy(excerpt, 60.0, 1), SR)
    # seed 1006: a voice (Polish) that none of the 10 files uses, and other sentences
    write_audio(root / "outside.wav", make_speech(1006, 5.0), SR)
    write_audio(root / "short.wav", speech[0][: SR // 2], SR)
    model_root = root / "project"
    _untrained_checkpoint(model_root / cli.DEFAULT_MODEL, speech)
    return {"root": root, "audio": audio_dir, "noisy20": root / "noisy20.wav", "noisy60": root / "noisy60.wav",
            "outside": root / "outside.wav", "short": root / "short.wav", "project": model_root}


def _untrained_checkpoint(path: Path, speech: list[np.ndarray]) -> None:
    import torch

    from samaf_lib.features import mfcc_frames
    from samaf_lib.model import SAMAF, save_checkpoint

    frames = np.concatenate([mfcc_frames(x, SR) for x in speech])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SAMAF(bits=128, hidden=32)
    model.set_standardiser(frames.mean(axis=0), frames.std(axis=0))
    save_checkpoint(path, model)


# system -> (extra index arguments, query file, largest offset error in seconds)
CASES = {
    "dejavu": (["--param", "min_score=50"], "noisy20", 0.2),
    "rafs": ([], "noisy20", 0.05),
    "panako": ([], "noisy60", 0.15),
    "triplets": ([], "noisy20", 0.1),
    "samaf": ([], "noisy60", 0.3),
}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("system", list(CASES))
def test_index_resume_identify_info(system, corpus, tmp_path, capsys, monkeypatch):
    if system == "samaf":
        pytest.importorskip("samaf_lib.systems.samaf")
        monkeypatch.setenv("SAMAF_ROOT", str(corpus["project"]))  # the default model is found there
    extra, query, tolerance = CASES[system]
    db = tmp_path / f"{system}.db"

    code, out, err = _run(capsys, "index", corpus["audio"], "--system", system, "--db", db, "-q", *extra)
    assert code == 0, err
    assert f"{N_FILES} file(s) added, 1 skipped" in out
    assert "skipped broken.wav: cannot be read as audio" in err
    assert db.is_file() and cli.manifest_path(db).is_file()
    manifest = json.loads(cli.manifest_path(db).read_text())
    assert manifest["system"] == system
    assert sorted(manifest["files"]) == sorted(_ref_id(i) for i in range(N_FILES))
    assert set(manifest["skipped"]) == {"broken.wav"}
    if system == "samaf":
        assert manifest["model"] == str((corpus["project"] / cli.DEFAULT_MODEL).resolve())

    # a second run adds nothing and does not touch the database
    before = db.read_bytes()
    code, out, err = _run(capsys, "index", corpus["audio"], "--system", system, "--db", db, "-q")
    assert code == 0, err
    assert f"0 file(s) added, 0 skipped, {N_FILES} already indexed" in out
    assert db.read_bytes() == before

    code, out, err = _run(capsys, "identify", corpus[query], corpus["outside"], "--db", db, "--json")
    assert code == 0, err
    hit, miss = json.loads(out)
    assert hit["ref_id"] == _ref_id(TARGET), hit
    assert abs(hit["offset_s"] - QUERY_START_S) <= tolerance, hit
    assert hit["error"] is None and hit["score"] >= hit["threshold"] and hit["fpr"] is not None
    assert miss["ref_id"] is None and miss["offset_s"] is None and miss["error"] is None, miss
    # the run calibrated the database on its own files (samaf_lib.calibrate)
    calibration = json.loads(cli.manifest_path(db).read_text())["calibration"]
    assert calibration["references"] == calibration["held_out"] == N_FILES
    assert calibration["lengths"]["5"]["negatives"] >= 10

    code, out, _ = _run(capsys, "identify", corpus["outside"], "--db", db)
    assert code == 0 and out.startswith(f"{corpus['outside']}: no match"), out

    code, out, _ = _run(capsys, "info", "--db", db, "--json")
    info = json.loads(out)
    assert code == 0
    assert info["system"] == system and info["references"] == N_FILES
    assert info["fingerprints"] > 0 and info["bytes"] > 0 and info["bytes_on_disk"] >= db.stat().st_size
    assert info["seconds"] == pytest.approx(N_FILES * 6.0, abs=0.1)
    code, out, _ = _run(capsys, "info", "--db", db)
    assert code == 0 and f"system             {system}" in out and "references         10" in out


@pytest.fixture()
def small_dir(corpus, tmp_path) -> Path:
    """Five of the files, one of them broken."""
    d = tmp_path / "small"
    d.mkdir()
    for i in (1, 2, 4, 5):
        (d / f"s{i:02d}.wav").write_bytes((corpus["audio"] / _ref_id(i)).read_bytes())
    (d / "broken.wav").write_bytes((corpus["audio"] / "broken.wav").read_bytes())
    return d


def test_interrupted_index_resumes(small_dir, tmp_path, capsys, monkeypatch):
    db = tmp_path / "rafs.db"
    real_decode = cli._decode
    calls = []

    def decode_then_interrupt(path):
        calls.append(path)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_decode(path)

    monkeypatch.setattr(cli, "_decode", decode_then_interrupt)
    code, _, err = _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q", "--fold-every", "1")
    assert code == 130 and "interrupted" in err
    manifest = json.loads(cli.manifest_path(db).read_text())
    assert sorted(manifest["files"]) == ["s01.wav", "s02.wav"] and set(manifest["skipped"]) == {"broken.wav"}

    monkeypatch.setattr(cli, "_decode", real_decode)
    code, out, err = _run(capsys, "index", small_dir, "--db", db, "-q")  # --system may be left out on resume
    assert code == 0, err
    assert "2 file(s) added, 0 skipped, 2 already indexed, 1 skipped before" in out
    code, out, _ = _run(capsys, "index", small_dir, "--db", db, "-q", "--retry-skipped")
    assert code == 0 and "0 file(s) added, 1 skipped" in out


def test_jobs_give_the_same_database(small_dir, tmp_path, capsys):
    dbs = []
    for jobs in (1, 2):
        db = tmp_path / f"j{jobs}.db"
        code, _, err = _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q", "--jobs", jobs)
        assert code == 0 and "skipped broken.wav" in err
        dbs.append(json.loads(cli.manifest_path(db).read_text())["files"])
    assert dbs[0] == dbs[1] and len(dbs[0]) == 4


def test_lost_manifest_is_rebuilt(small_dir, tmp_path, capsys):
    db = tmp_path / "p.db"
    assert _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q")[0] == 0
    cli.manifest_path(db).unlink()
    code, out, _ = _run(capsys, "info", "--db", db, "--json")
    assert code == 0 and json.loads(out)["system"] == "rafs" and json.loads(out)["references"] == 4
    code, out, _ = _run(capsys, "index", small_dir, "--db", db, "-q")
    assert code == 0 and "0 file(s) added" in out and "4 already indexed" in out


def test_identify_reports_bad_files(small_dir, corpus, tmp_path, capsys):
    db = tmp_path / "r.db"
    assert _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q")[0] == 0
    broken, short, missing = small_dir / "broken.wav", corpus["short"], tmp_path / "absent.wav"
    code, out, _ = _run(capsys, "identify", broken, short, missing, "--db", db)
    lines = out.strip().splitlines()
    assert code == 1  # every file failed
    assert lines[0].startswith(f"{broken}: error: cannot be read as audio")
    assert lines[1].startswith(f"{short}: error:") and "shorter than" in lines[1]
    assert lines[2] == f"{missing}: error: no such file"
    code, out, _ = _run(capsys, "identify", broken, small_dir / "s02.wav", "--db", db, "--json")
    res = json.loads(out)
    assert code == 0  # one file could be queried
    assert res[0]["error"] and res[0]["ref_id"] is None
    assert res[1]["ref_id"] == "s02.wav" and res[1]["error"] is None


def test_usage_errors_are_one_line_with_status_2(small_dir, tmp_path, capsys, monkeypatch):
    db = tmp_path / "d.db"
    assert _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q")[0] == 0
    cases = [
        (["index", small_dir, "--system", "dejavu", "--db", db], "is a rafs database, not dejavu"),
        (["index", small_dir, "--system", "rafs", "--db", db, "--param", "block=128"], "other parameters"),
        (["index", small_dir, "--db", tmp_path / "new.db"], "--system"),
        (["index", tmp_path / "nowhere", "--system", "rafs", "--db", tmp_path / "x.db"], "no such folder"),
        (["index", small_dir, "--system", "rafs", "--db", tmp_path / "y.db", "--param", "flip_bits=-1"],
         "flip_bits"),
        (["index", small_dir, "--system", "rafs", "--db", tmp_path / "z.db", "--model", db], "samaf only"),
        (["identify", small_dir / "s01.wav", "--db", tmp_path / "absent.db"], "no database there"),
        (["info", "--db", tmp_path / "absent.db"], "no database there"),
    ]
    for argv, message in cases:
        code, _, err = _run(capsys, *argv)
        assert code == 2, (argv, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    code, _, err = _run(capsys, "index", small_dir, "--system", "shazam", "--db", db)  # argparse's own check
    assert code == 2 and "invalid choice" in err


def test_samaf_without_a_trained_model_says_how_to_get_one(small_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SAMAF_ROOT", str(tmp_path / "empty-project"))
    code, _, err = _run(capsys, "index", small_dir, "--system", "samaf", "--db", tmp_path / "s.db")
    assert code == 2
    assert "no trained SAMAF model" in err and "make repro" in err and "dvc repro train" in err
    assert not (tmp_path / "s.db").exists()


def test_console_script_help():
    exe = Path(sys.executable).parent / "samaf"
    if not exe.exists():
        pytest.skip(f"{exe} not installed (pip install -e .)")
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0
    assert all(c in res.stdout for c in ("index", "identify", "info"))
    res = subprocess.run([str(exe), "index", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0 and "--jobs" in res.stdout
    assert "not yet in the database" in " ".join(res.stdout.split())


def test_info_of_a_samaf_database_needs_no_model(small_dir, corpus, tmp_path, capsys, monkeypatch):
    """``info`` reads a SAMAF database's metadata (no torch) and shows what loading it would."""
    monkeypatch.setenv("SAMAF_ROOT", str(corpus["project"]))
    db = tmp_path / "s.db"
    assert _run(capsys, "index", small_dir, "--system", "samaf", "--db", db, "-q", "--no-calibrate")[0] == 0
    code, out, _ = _run(capsys, "info", "--db", db, "--json")
    info = json.loads(out)
    loaded = cli.load_system("samaf", db)
    assert code == 0 and info["stats"] == json.loads(json.dumps(loaded.stats(), default=str))
    assert info["references"] == len(loaded) == 4 and info["params"] == info["stats"]["params"]
    script = ("import sys; from samaf_lib.cli import main; code = main(['info', '--db', sys.argv[1], '--json']); "
              "print('torch' in sys.modules, file=sys.stderr); sys.exit(code)")
    res = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0 and json.loads(res.stdout) == info
    assert res.stderr.strip().splitlines()[-1] == "False"


def test_samaf_ivf_database_through_the_command(small_dir, corpus, tmp_path, capsys, monkeypatch):
    """``--param index=ivf``: a SAMAF store that is exact while small and trains its IVF when it grows
    (samaf_lib/samaf_store.py); it indexes one file at a time and answers like the exact database."""
    monkeypatch.setenv("SAMAF_ROOT", str(corpus["project"]))
    flat, ivf = tmp_path / "flat.db", tmp_path / "ivf.db"
    assert _run(capsys, "index", small_dir, "--system", "samaf", "--db", flat, "-q", "--no-calibrate")[0] == 0
    assert _run(capsys, "index", small_dir, "--system", "samaf", "--db", ivf, "-q", "--no-calibrate",
                "--param", "index=ivf")[0] == 0
    info = json.loads(_run(capsys, "info", "--db", ivf, "--json")[1])
    assert info["params"]["index"] == "ivf" and info["references"] == 4
    answers = [json.loads(_run(capsys, "identify", corpus["noisy60"], "--db", db, "--json")[1]) for db in (flat, ivf)]
    assert answers[0] == answers[1]


def test_long_jobs_resample_with_scipy_and_get_the_same_database(small_dir, tmp_path, capsys, monkeypatch):
    """``index`` switches to scipy's compiled resampler for a large folder: the fingerprints do not change."""
    from samaf_lib import audio

    monkeypatch.setattr(audio, "_scipy_signal_imported", lambda: False)  # as in a fresh process
    monkeypatch.setattr(audio, "NUMPY_RESAMPLE_BUDGET", float("inf"))
    dbs = {}
    for label, threshold in (("numpy", float("inf")), ("scipy", 0)):
        monkeypatch.setattr(cli, "COMPILED_RESAMPLER_BYTES", threshold)
        work = audio._numpy_resample_work
        db = dbs[label] = tmp_path / f"{label}.rafs"  # RAFS resamples every file to 5512 Hz
        assert _run(capsys, "index", small_dir, "--system", "rafs", "--db", db, "-q", "--no-calibrate")[0] == 0
        assert (audio._numpy_resample_work > work) == (label == "numpy")
        assert audio._prefer_compiled is False  # the setting does not outlive the command
    a, b = cli.load_system("rafs", dbs["numpy"]), cli.load_system("rafs", dbs["scipy"])
    assert sorted(a.references()) == sorted(b.references())
    for rid in a.references():
        ra, rb = a.reference_record(rid), b.reference_record(rid)
        assert ra.keys() == rb.keys() and all(np.array_equal(ra[k], rb[k]) for k in ra)
