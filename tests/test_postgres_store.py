"""Dejavu on a PostgreSQL server (``samaf_lib.postgres_store``), against a real server the test starts
(``initdb`` and ``pg_ctl`` on PATH, run as an unprivileged user when the tests run as root); skipped with the
reason when none can be started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_music

from samaf_lib import cli, store
from samaf_lib.audio import write_audio
from samaf_lib.systems.dejavu import Dejavu

SR = 16000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> str:
    """A PostgreSQL server of its own, on a Unix socket; its URL."""
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    tools = {t: shutil.which(t) for t in ("initdb", "pg_ctl")}
    if not all(tools.values()):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH")
    base = Path(tempfile.mkdtemp(prefix="samaf-pg-"))  # not under pytest's folder, which only root may enter
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and no runuser to start PostgreSQL as another user")
        prefix = [runuser, "-u", "nobody", "--"]
        for d in (base, sock):
            shutil.chown(d, "nobody")
    port = _free_port()
    try:
        subprocess.run([*prefix, tools["initdb"], "-D", str(data), "-A", "trust", "-U", "samaf"], check=True,
                       capture_output=True, timeout=120)
        subprocess.run([*prefix, tools["pg_ctl"], "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                        f"-k {sock} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True,
                       timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        out = getattr(e, "stderr", b"") or b""
        pytest.skip(f"could not start a PostgreSQL server: {e} {out.decode(errors='replace')[-300:]}")
    yield f"postgresql://samaf@/postgres?host={sock}&port={port}"
    subprocess.run([*prefix, tools["pg_ctl"], "-D", str(data), "-m", "fast", "stop"], capture_output=True,
                   timeout=120, check=False)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def fresh(server) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as con:
        for table in ("fingerprints", "songs", "meta"):
            con.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    return server


def test_answers_as_the_sqlite_database(fresh, tmp_path):
    from samaf_lib.postgres_store import DejavuPostgres

    music = [make_music(i, 8.0) for i in range(3)]
    mem = Dejavu()
    for i, x in enumerate(music):
        mem.add(f"r{i}", x, SR)
    DejavuPostgres.create(fresh, Dejavu())
    pg = DejavuPostgres.open(fresh)
    for i, x in enumerate(music):
        pg.add(f"r{i}", x, SR)
    other = DejavuPostgres.open(fresh, writable=False)  # another connection sees the commits
    assert other.references() == mem.references()
    rng = np.random.default_rng(0)
    for x in music + [make_music(50, 8.0)]:
        q = x[SR: 6 * SR] + 0.01 * rng.standard_normal(5 * SR)
        assert other.identify(q, SR) == mem.identify(q, SR)
    rec, want = other.reference_record("r1"), mem.reference_record("r1")
    assert all(np.array_equal(rec[k], want[k]) for k in want)
    assert other.stats()["fingerprints"] == mem.stats()["fingerprints"]
    pg.remove(["r1"])
    assert DejavuPostgres.open(fresh).references() == ["r0", "r2"]
    pg.save(tmp_path / "copy.dejavu")  # a copy as a Dejavu SQLite file
    assert Dejavu.load(tmp_path / "copy.dejavu").references() == ["r0", "r2"]
    with pytest.raises(ValueError, match="other parameters"):
        DejavuPostgres.create(fresh, Dejavu(fan_value=5))


def test_cli_index_identify_remove_on_the_server(fresh, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAMAF_STATE_DIR", str(tmp_path / "state"))
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(3):
        write_audio(audio / f"m{i}.wav", make_music(i, 8.0), SR)
    assert cli.main(["index", str(audio), "--system", "dejavu", "--db", fresh, "--no-calibrate", "-q"]) == 0
    write_audio(audio / "m3.wav", make_music(3, 8.0), SR)
    assert cli.main(["index", str(audio), "--db", fresh, "--no-calibrate", "-q"]) == 0
    capsys.readouterr()
    clip = tmp_path / "clip.wav"
    write_audio(clip, make_music(3, 8.0)[SR: 6 * SR], SR)
    assert cli.main(["identify", str(clip), "--db", fresh]) == 0
    assert "m3.wav" in capsys.readouterr().out
    assert cli.main(["remove", "m0.wav", "--db", fresh]) == 0
    from samaf_lib.postgres_store import pointer_for

    pointer = pointer_for(fresh)
    journal = store.read(store.journal_path(pointer))
    assert all(not r.arrays for r in journal.records)  # the server holds the rows, the journal the entries
    system, manifest = cli.open_database(pointer)
    assert sorted(system.references()) == ["m1.wav", "m2.wav", "m3.wav"] == sorted(manifest["files"])
    assert Path(pointer).stat().st_size < 1000


def test_an_unreachable_server_is_named(tmp_path, monkeypatch, capsys):
    pytest.importorskip("psycopg", reason="psycopg is not installed")
    monkeypatch.setenv("SAMAF_STATE_DIR", str(tmp_path / "state"))
    audio = tmp_path / "audio"
    audio.mkdir()
    write_audio(audio / "m0.wav", make_music(0, 8.0), SR)
    url = f"postgresql://nobody:secret@/none?host={tmp_path}&port=1"
    assert cli.main(["index", str(audio), "--system", "dejavu", "--db", url, "--no-calibrate", "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect" in err and "secret" not in err
