"""Executed notebooks as the pipeline keeps them: the same bytes on every rerun, and nothing a reader should not see.

Each stage runs its notebook with papermill into ``reports/executed/`` and declares the result as an output, so
``dvc.lock`` records its hash. Papermill and the kernel stamp every cell with start and end times; :func:`clean`
removes those stamps (and nothing else), so a rerun of the same commit writes the same file. :func:`problems`
lists what an executed notebook must not show: output on standard error (warnings, progress bars), a warning in
any output, or a path of the machine it ran on.

    python -m samaf_lib.executed clean reports/executed/01_data.ipynb
    python -m samaf_lib.executed check reports/executed/*.ipynb
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

#: Papermill's notebook-level keys that hold times or the machine's environment.
_RUN_KEYS = ("start_time", "end_time", "duration", "exception", "environment_variables")
#: Output text that gives away the machine: an absolute path under a home, temporary or work folder.
_ABSOLUTE = re.compile(r"(?<![\w.])(/home/|/Users/|/tmp/|/var/folders/|/work/|/root/|[A-Z]:\\\\Users\\\\)")
_WARNING = re.compile(r"\b\w*Warning\b")
_PROGRESS = re.compile(r"\d+%\|")


def clean_notebook(nb: dict) -> dict:
    """``nb`` without what differs from run to run of the same code on the same data.

    * run times: papermill's start, end and duration, and the kernel's execution timestamps;
    * cell ids: papermill gives the cell it injects (and any cell without one) a random id; every cell gets an id
      made from its position and source instead;
    * how output was chunked: consecutive pieces of one stream (stdout or stderr) are joined, because the kernel
      sends a print as one message or several depending on timing.
    """
    import hashlib

    run = nb.get("metadata", {}).get("papermill")
    if isinstance(run, dict):
        for key in _RUN_KEYS:
            run.pop(key, None)
    for i, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {})
        meta.pop("papermill", None)
        meta.pop("execution", None)
        source = "".join(cell.get("source", ""))
        cell["id"] = f"c{i:03d}-{hashlib.blake2b(source.encode(), digest_size=4).hexdigest()}"
        if "outputs" in cell:
            cell["outputs"] = _coalesce_streams(cell["outputs"])
    return nb


def _coalesce_streams(outputs: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            text = "".join(merged[-1]["text"]) + "".join(out.get("text", ""))
            merged[-1] = {**merged[-1], "text": text.splitlines(keepends=True)}
        elif out.get("output_type") == "stream":
            merged.append({**out, "text": "".join(out.get("text", "")).splitlines(keepends=True)})
        else:
            merged.append(out)
    return merged


def clean(path: str | os.PathLike) -> None:
    """Rewrite the executed notebook at ``path`` without its run times (in place, atomically)."""
    p = Path(path)
    nb = clean_notebook(json.loads(p.read_text(encoding="utf-8")))
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, p)


def _texts(output: dict) -> list[str]:
    if output.get("output_type") == "stream":
        return ["".join(output.get("text", ""))]
    if output.get("output_type") == "error":
        return ["\n".join(output.get("traceback", []))]
    data = output.get("data", {})
    return ["".join(data[k]) if isinstance(data[k], list) else str(data[k])
            for k in ("text/plain", "text/html", "text/markdown") if k in data]


def problems(nb: dict) -> list[str]:
    """What the executed notebook ``nb`` shows that it should not, one line per finding (empty when clean)."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(output.get("text", ""))
                found.append(f"cell {i}: standard error: {text.strip()[:120]!r}")
            for text in _texts(output):
                for pattern, what in ((_WARNING, "a warning"), (_ABSOLUTE, "an absolute path"),
                                      (_PROGRESS, "a progress bar")):
                    m = pattern.search(text)
                    if m:
                        start = max(0, m.start() - 40)
                        found.append(f"cell {i}: {what}: {text[start:m.end() + 60].strip()!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("clean", "check"):
        print("usage: python -m samaf_lib.executed {clean|check} NOTEBOOK...", file=sys.stderr)
        return 2
    status = 0
    for path in args[1:]:
        if args[0] == "clean":
            clean(path)
            continue
        found = problems(json.loads(Path(path).read_text(encoding="utf-8")))
        for line in found:
            print(f"{path}: {line}")
        status = status or int(bool(found))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
