"""Executed notebooks: run times removed, and what a reader must not see found."""

from __future__ import annotations

import json

from samaf_lib import executed


def _nb(outputs, meta=None):
    return {"metadata": {"papermill": {"start_time": "2026-01-01T00:00:00", "end_time": "x", "duration": 3.2,
                                       "exception": None, "parameters": {"seed": 1}, "environment_variables": {}}},
            "cells": [{"cell_type": "code", "metadata": meta or {}, "outputs": outputs, "source": ""}],
            "nbformat": 4, "nbformat_minor": 5}


def test_clean_removes_run_times_and_keeps_the_rest(tmp_path):
    nb = _nb([{"output_type": "stream", "name": "stdout", "text": ["42\n"]}],
             meta={"tags": ["parameters"], "papermill": {"duration": 1.0, "status": "completed"},
                   "execution": {"iopub.execute_input": "2026-01-01T00:00:00"}})
    path = tmp_path / "run.ipynb"
    path.write_text(json.dumps(nb))
    executed.clean(path)
    out = json.loads(path.read_text())
    assert out["metadata"]["papermill"] == {"parameters": {"seed": 1}}
    assert out["cells"][0]["metadata"] == {"tags": ["parameters"]}
    assert out["cells"][0]["outputs"] == nb["cells"][0]["outputs"]
    first = path.read_bytes()
    executed.clean(path)  # cleaning twice changes nothing
    assert path.read_bytes() == first


def test_problems_finds_warnings_progress_bars_stderr_and_machine_paths():
    assert executed.problems(_nb([{"output_type": "stream", "name": "stdout", "text": "top-1 0.70\n"},
                                  {"output_type": "execute_result", "data": {"text/plain": "reports/tables"}}])) == []
    found = executed.problems(_nb([
        {"output_type": "stream", "name": "stderr", "text": "index:  10%|█ | 1/10\r"},
        {"output_type": "stream", "name": "stdout", "text": "FutureWarning: the default will change\n"},
        {"output_type": "execute_result", "data": {"text/plain": "PosixPath('/home/me/study/reports/x.png')"}},
    ]))
    kinds = " ".join(found)
    assert "standard error" in kinds and "a progress bar" in kinds and "a warning" in kinds
    assert "an absolute path" in kinds


def test_check_command_exit_status(tmp_path, capsys):
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    good.write_text(json.dumps(_nb([])))
    bad.write_text(json.dumps(_nb([{"output_type": "stream", "name": "stderr", "text": "UserWarning: x"}])))
    assert executed.main(["check", str(good)]) == 0
    assert executed.main(["check", str(good), str(bad)]) == 1
    assert "bad.ipynb" in capsys.readouterr().out
    assert executed.main(["nothing"]) == 2


def test_clean_makes_ids_and_stream_chunks_the_same_on_every_run():
    first = _nb([{"output_type": "stream", "name": "stdout", "text": ["a\n"]},
                 {"output_type": "stream", "name": "stdout", "text": ["b\n", "c"]}])
    second = _nb([{"output_type": "stream", "name": "stdout", "text": ["a\nb\nc"]}])
    first["cells"][0]["id"], second["cells"][0]["id"] = "1f66cbb3", "9554098e"  # papermill's random ids
    a, b = executed.clean_notebook(first), executed.clean_notebook(second)
    assert a == b
    assert a["cells"][0]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n", "c"]}]
    stderr_between = _nb([{"output_type": "stream", "name": "stdout", "text": "x\n"},
                          {"output_type": "stream", "name": "stderr", "text": "y\n"},
                          {"output_type": "stream", "name": "stdout", "text": "z\n"}])
    assert len(executed.clean_notebook(stderr_between)["cells"][0]["outputs"]) == 3
