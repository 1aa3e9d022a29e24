"""The toolkit against careless or hostile input: each case ends in a clear error, a recorded skip or the right
answer, and never loses indexed work.

Small files (a few seconds of generated speech), RAFS as the system (the fastest to build); every case runs
``samaf_lib.cli.main`` in-process except the signal test, which needs a process to signal.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_speech

from samaf_lib import cli
from samaf_lib.audio import write_audio

SR = 16000


def _index(*args: str) -> int:
    return cli.main(["index", *args, "--quiet", "--no-calibrate"])


def _wav_declaring(path: Path, rate: int, seconds: float = 1.0) -> None:
    """A PCM-16 WAV of a tone whose header declares ``rate``."""
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * SR)) / SR) * 32767).astype("<i2")
    data = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.fixture()
def folder(tmp_path) -> Path:
    """Three good speech files of 4 s."""
    audio = tmp_path / "audio"
    for i in range(3):
        write_audio(audio / f"good{i}.wav", make_speech(i, 4.0), SR)
    return audio


def _manifest(db: Path) -> dict:
    return json.loads(Path(str(db) + ".json").read_text())


def test_sample_rate_bombs_are_recorded_skips_and_the_run_goes_on(folder, tmp_path, capsys):
    for rate in (1, 125_000_003, 2**31 - 1):
        _wav_declaring(folder / f"bomb{rate}.wav", rate)
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    m = _manifest(db)
    assert sorted(m["files"]) == ["good0.wav", "good1.wav", "good2.wav"]
    for rate in (1, 125_000_003, 2**31 - 1):
        assert "sample rate" in m["skipped"][f"bomb{rate}.wav"]["reason"]
    assert "skipped bomb1.wav" in capsys.readouterr().err


def test_a_second_writer_fails_with_a_clear_message_while_the_first_holds_the_lock(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    with cli.database_lock(db):
        assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 2
        assert "another `samaf index` is writing this database" in capsys.readouterr().err
        assert not db.exists()
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0  # the lock is free again


def test_two_writers_at_once_lose_nothing(tmp_path):
    """Two `samaf index --wait` on one database, on two folders: every file of both ends up in it."""
    a, b = tmp_path / "a", tmp_path / "b"
    for i in range(3):
        write_audio(a / f"a{i}.wav", make_speech(i, 4.0), SR)
        write_audio(b / f"b{i}.wav", make_speech(10 + i, 4.0), SR)
    db = tmp_path / "x.db"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "samaf_lib.cli", "index", "--system", "rafs", "--db", str(db), "--quiet", "--wait"]
    procs = [subprocess.Popen([*cmd, str(d)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for d in (a, b)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(_manifest(db)["files"]) == ["a0.wav", "a1.wav", "a2.wav", "b0.wav", "b1.wav", "b2.wav"]
    assert len(cli.load_system("rafs", db)) == 6


def test_broken_links_loops_and_unreadable_entries_are_recorded_skips(folder, tmp_path):
    (folder / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (folder / "loop1.wav").symlink_to(folder / "loop2.wav")
    (folder / "loop2.wav").symlink_to(folder / "loop1.wav")
    (folder / "noise.mp3").write_bytes(np.random.default_rng(1).bytes(5000))
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    m = _manifest(db)
    assert sorted(m["files"]) == ["good0.wav", "good1.wav", "good2.wav"]
    assert "no such file" in m["skipped"]["dangling.wav"]["reason"]
    assert "loop" in m["skipped"]["loop1.wav"]["reason"]
    assert "not audio in a format this toolkit reads" in m["skipped"]["noise.mp3"]["reason"]


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads every file")
def test_unreadable_file_and_folder_are_named_in_words(folder, tmp_path, capsys):
    locked_file = folder / "locked.wav"
    write_audio(locked_file, make_speech(5, 4.0), SR)
    locked_file.chmod(0)
    locked_dir = folder / "private"
    write_audio(locked_dir / "inside.wav", make_speech(6, 4.0), SR)
    locked_dir.chmod(0)
    try:
        db = tmp_path / "x.db"
        assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
        m = _manifest(db)
        assert "permission denied" in m["skipped"]["locked.wav"]["reason"]
        assert "permission denied" in m["skipped"]["private/"]["reason"]
        assert "private: folder skipped" in capsys.readouterr().err
    finally:
        locked_dir.chmod(0o755)
        locked_file.chmod(0o644)


def test_a_name_that_is_not_utf8_is_indexed_and_printed(folder, tmp_path, capsys):
    import io

    import soundfile as sf

    wav = io.BytesIO()
    sf.write(wav, make_speech(7, 4.0), SR, format="WAV", subtype="PCM_16")
    with open(os.fsencode(folder) + b"/caf\xe9.wav", "wb") as fh:  # a Latin-1 name: not valid UTF-8
        fh.write(wav.getvalue())
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    assert len(_manifest(db)["files"]) == 4
    assert cli.main(["info", "--db", str(db)]) == 0
    capsys.readouterr()


def test_sigterm_saves_the_work_done_like_ctrl_c(tmp_path):
    """`samaf index` stopped by SIGTERM part-way keeps every file it finished; the same command then goes on."""
    audio = tmp_path / "audio"
    (audio).mkdir()
    (audio / "a_broken.wav").write_bytes(b"RIFF" + bytes(100))  # skipped at once: tells the test work has begun
    for i in range(40):
        write_audio(audio / f"f{i:02d}.wav", make_speech(i, 3.0), SR)
    db = tmp_path / "x.db"
    cmd = [sys.executable, "-m", "samaf_lib.cli", "index", str(audio), "--system", "rafs", "--db", str(db)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd + ["--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "samaf index: skipped a_broken.wav: ..."
    assert "a_broken.wav" in line, line
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err  # 0 when it finished before the signal came
    system, m = cli.open_database(db)
    assert sorted(system.references()) == sorted(m["files"])
    if proc.returncode == 130:
        assert "every file done so far is kept" in err and len(m["files"]) < 40
    assert subprocess.run(cmd + ["--quiet"], env=env, capture_output=True).returncode == 0
    assert len(_manifest(db)["files"]) == 40


@pytest.mark.parametrize("system", ["rafs", "dejavu"])
def test_sigkill_at_random_moments_keeps_every_file_reported_done(tmp_path, system):
    """SIGKILL `samaf index` at moments drawn with a fixed seed (during start-up, between files, in a fold):
    every file it reported done is in the database when it is reopened, and the same command then completes it
    with each file exactly once."""
    audio = tmp_path / "audio"
    audio.mkdir()
    n_files = 14
    for i in range(n_files):
        write_audio(audio / f"f{i:02d}.wav", make_speech(100 + i, 2.0), SR)
    db = tmp_path / f"k.{system}"
    cmd = [sys.executable, "-m", "samaf_lib.cli", "index", str(audio), "--system", system, "--db", str(db),
           "--quiet", "-v", "--fold-every", "4"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    rng = np.random.default_rng(20261202)
    done: set[str] = set()
    kills = 0
    for _ in range(5):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wait_lines, delay = int(rng.integers(0, 4)), float(rng.uniform(0.0, 0.15))
        lines = []
        while len(lines) < wait_lines:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(delay)
        proc.kill()
        lines += proc.stdout.read().splitlines()
        proc.wait()
        kills += proc.returncode == -signal.SIGKILL
        done |= {line.split(" ", 1)[1].strip() for line in lines if line.startswith("added ")}
        if db.exists():
            reopened, manifest = cli.open_database(db)
            refs = reopened.references()
            assert done <= set(refs), sorted(done - set(refs))
            assert len(refs) == len(set(refs)) and set(refs) == set(manifest["files"])
        else:
            assert not done
    assert kills >= 2 and done  # the drawn moments killed runs that had reported files
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    reopened, manifest = cli.open_database(db)
    assert sorted(reopened.references()) == [f"f{i:02d}.wav" for i in range(n_files)]
    assert all(manifest["files"][r].get("blake2b") for r in reopened.references())
    match = reopened.identify(make_speech(105, 2.0)[4000:28000], SR)
    assert match.ref_id == "f05.wav"


def test_orphan_temporary_files_are_removed_on_the_next_run(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    orphan = tmp_path / ".x.db.abc123.tmp.db"
    orphan.write_bytes(b"half a database")
    assert _index(str(folder), "--db", str(db)) == 0
    assert not orphan.exists() and "removed .x.db.abc123.tmp.db" in capsys.readouterr().err


def test_an_unrelated_file_named_like_the_manifest_is_never_overwritten(folder, tmp_path, capsys):
    db = tmp_path / "x"
    Path(str(db) + ".json").write_text('{"my": "settings"}')
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 2
    assert "is not a samaf manifest; refusing to overwrite it" in capsys.readouterr().err
    assert json.loads(Path(str(db) + ".json").read_text()) == {"my": "settings"} and not db.exists()


def test_a_missing_database_whose_manifest_is_left_is_not_replaced(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    db.unlink()
    before = Path(str(db) + ".json").read_text()
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 2
    assert "database file is missing but its manifest" in capsys.readouterr().err
    assert Path(str(db) + ".json").read_text() == before


def test_same_name_in_another_folder_is_not_taken_as_already_indexed(tmp_path, capsys):
    """B/take.wav after A/take.wav, same size and time, other content: named as a clash, never silently kept."""
    a, b = tmp_path / "A", tmp_path / "B"
    write_audio(a / "take.wav", make_speech(1, 4.0), SR)
    write_audio(b / "take.wav", make_speech(2, 4.0), SR)
    st = (a / "take.wav").stat()
    os.utime(b / "take.wav", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (a / "take.wav").stat().st_size == (b / "take.wav").stat().st_size
    db = tmp_path / "x.db"
    assert _index(str(a), "--system", "rafs", "--db", str(db)) == 0
    capsys.readouterr()
    assert _index(str(b), "--db", str(db)) == 0
    out = capsys.readouterr()
    assert "already has a reference named 'take.wav'" in out.err and "1 not indexed" in out.out
    entry = _manifest(db)["files"]["take.wav"]
    assert entry["source"].endswith("A/take.wav") and len(entry["blake2b"]) == 32


def test_verify_finds_a_changed_content_with_the_same_size_and_time(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    f = folder / "good1.wav"
    st = f.stat()
    data = bytearray(f.read_bytes())
    data[-2000:] = bytes(2000)
    f.write_bytes(bytes(data))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    capsys.readouterr()
    assert _index(str(folder), "--db", str(db), "--verify") == 0
    out = capsys.readouterr()
    assert "good1.wav: its content differs" in out.err and "1 changed since indexed" in out.out


def test_unknown_parameter_and_absurd_jobs_are_named(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db), "--param", "nosuch=3") == 2
    err = capsys.readouterr().err
    assert "--param nosuch: not a parameter of rafs" in err and "flip_bits" in err
    assert _index(str(folder), "--system", "rafs", "--db", str(db), "--jobs", "1000") == 2
    assert "--jobs must be between 1 and 64" in capsys.readouterr().err
    assert not db.exists()


def test_files_are_written_with_the_users_umask(folder, tmp_path):
    old = os.umask(0o022)
    try:
        db = tmp_path / "x.db"
        assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
        for p in (db, Path(str(db) + ".json")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    finally:
        os.umask(old)


# -- the Python API --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sr", [0, -16000, "16000", True, 1.5, 1, 10**9])
def test_every_system_names_a_bad_sample_rate(sr):
    from samaf_lib import systems
    from samaf_lib.audio import AudioError

    x = make_speech(0, 3.0)
    for name in ("dejavu", "rafs", "panako", "triplets"):
        s = systems.get(name)
        with pytest.raises(AudioError, match="sample rate"):
            s.add("r", x, sr)
        with pytest.raises(AudioError, match="sample rate"):
            s.identify(x, sr)


def test_absurd_amplitude_and_constant_signals_get_a_clear_answer():
    from samaf_lib import systems
    from samaf_lib.audio import AudioError

    for name in ("dejavu", "rafs", "panako", "triplets"):
        s = systems.get(name)
        with pytest.raises(AudioError, match="expected in \\[-1, 1\\]"):
            s.identify(np.full(3 * SR, 1e30, np.float32), SR)
        with pytest.raises(AudioError, match="constant signal"):
            s.add("dc", np.full(3 * SR, 0.5, np.float32), SR)
        s.add("speech", make_speech(0, 4.0), SR)
        assert s.identify(np.full(3 * SR, 0.5, np.float32), SR).ref_id is None, name


def test_identify_names_constant_clipped_and_absurd_clips(folder, tmp_path, capsys):
    """Through the command: a constant clip is an error in words, a clip pinned at full scale gets its answer with a
    warning, float samples of 1e30 are refused naming the likely cause."""
    import soundfile as sf

    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    clips = tmp_path / "clips"
    clips.mkdir()
    write_audio(clips / "a_constant.wav", np.full(3 * SR, 0.25, np.float32), SR)
    speech = make_speech(1, 4.0)[: 3 * SR]
    write_audio(clips / "b_clipped.wav", np.clip(speech * 40, -1, 1), SR)
    sf.write(clips / "c_huge.wav", (speech * 1e30).astype(np.float32), SR, subtype="FLOAT")
    capsys.readouterr()
    assert cli.main(["identify", str(clips), "--db", str(db), "--json"]) == 0
    constant, clipped, huge = json.loads(capsys.readouterr().out)
    assert "constant signal" in constant["error"]
    assert clipped["error"] is None and "clipped" in clipped["warning"]
    assert "expected in [-1, 1]" in huge["error"]


@pytest.mark.parametrize("key,value", [("overlap_ratio", 0.9999), ("neighborhood_size", 100000),
                                       ("fan_value", 10**6)])
def test_dejavu_parameters_that_would_hang_are_refused_with_their_range(key, value):
    from samaf_lib.systems.dejavu import Dejavu

    with pytest.raises(ValueError, match=key):
        Dejavu(**{key: value})


def test_samaf_parameters_that_would_exhaust_memory_are_refused():
    from samaf_lib.systems.samaf import SAMAFSystem

    for key, value in (("k", 10**9), ("verify", 10**9), ("bits", 10**6), ("batch_size", 10**9)):
        with pytest.raises(ValueError, match=key):
            SAMAFSystem(**{key: value})


def test_a_truncated_database_names_its_path(folder, tmp_path):
    from samaf_lib import systems

    for name in ("panako", "triplets", "dejavu", "rafs"):
        s = systems.get(name)
        s.add("speech", make_speech(0, 4.0), SR)
        full = tmp_path / f"{name}.db"
        s.save(full)
        cut = tmp_path / f"{name}-cut.db"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(ValueError, match=f"{name}-cut.db"):
            systems.load(name, cut)


def test_a_dejavu_database_carrying_a_trigger_is_refused(tmp_path):
    import sqlite3

    from samaf_lib.systems.dejavu import Dejavu

    s = Dejavu()
    s.add("speech", make_speech(0, 4.0), SR)
    db = tmp_path / "dj.db"
    s.save(db)
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER eat AFTER INSERT ON fingerprints BEGIN DELETE FROM fingerprints; END")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="trigger eat"):
        Dejavu.load(db)


def test_a_damaged_manifest_and_a_manifest_folder_are_named_before_any_work(folder, tmp_path, capsys):
    db = tmp_path / "x.db"
    assert _index(str(folder), "--system", "rafs", "--db", str(db)) == 0
    m = _manifest(db)
    m["files"] = None
    Path(str(db) + ".json").write_text(json.dumps(m))
    capsys.readouterr()
    assert _index(str(folder), "--db", str(db)) == 2
    assert "'files' is not a mapping" in capsys.readouterr().err
    other = tmp_path / "y.db"
    Path(str(other) + ".json").mkdir()
    assert _index(str(folder), "--system", "rafs", "--db", str(other)) == 2
    assert "is a folder, not a file" in capsys.readouterr().err and not other.exists()
