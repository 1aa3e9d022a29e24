"""SAMAF's database kept in an LMDB file by the store layer of ``samaf_lib.lmdb_store``, for the toolkit.

SAMAF files no postings: its search is a faiss binary index over every stored code, which lives in memory. So
:class:`SAMAFOnDisk` keeps the codes and times of each reference in the store (and its model, so that the file
is the whole database), reads them once when it opens, and from then on appends each new reference to the file
in one committed transaction, as the other systems do: an add writes that reference, never the database again.
At 128 bits and a 0.25-s hop that is 24 bytes per window, 345 MB per 1,000 hours.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .lmdb_store import OnDisk, Store
from .systems.samaf import SAMAFSystem


class SAMAFOnDisk(OnDisk, SAMAFSystem):
    """SAMAF with its database in a :class:`~samaf_lib.lmdb_store.Store` (see the module docstring).
    Constructed directly, it is the in-memory :class:`SAMAFSystem`."""

    KEY = ">u4"
    ROW = [("ref", ">u4")]
    NAMES = "_refs"

    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(0, self.KEY), np.zeros(0, self.ROW)  # searched by the in-memory index, not by hash

    @classmethod
    def _meta(cls, system: Any) -> dict[str, Any]:
        return {**super()._meta(system), "model_config": system.model.config}

    @classmethod
    def _extras(cls, system: Any) -> dict[str, bytes]:
        from .io import save_npz

        buf = io.BytesIO()
        save_npz(buf, False, **{k: v.detach().cpu().numpy() for k, v in system.model.state_dict().items()})
        return {"model": buf.getvalue()}

    @classmethod
    def _from_store(cls, st: Store) -> SAMAFOnDisk:
        import torch

        from .model import load_state, model_from_config

        data = st.extra("model")
        if data is None:
            raise ValueError(f"{st.path}: no model stored")
        model = model_from_config(st.meta["model_config"])
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            load_state(model, {k: torch.from_numpy(np.array(z[k])) for k in z.files}, source=str(st.path))
        params = dict(st.meta["params"])
        system = cls(model=model, **{k: v for k, v in params.items() if k != "checkpoint"})
        system.params["checkpoint"] = params.get("checkpoint")
        system._disk = st
        system._loaded: set[int] = set()
        system._catch_up(force=True)
        return system

    def _catch_up(self, force: bool = False) -> None:
        """Load into memory the references committed since the last look (all of them when one was removed)."""
        st = self._disk
        if not st.refresh() and not force:
            return
        if not self._loaded <= set(st.names):  # a reference was removed: start again from the file
            self._reset()
        for idx in sorted(set(st.names) - self._loaded):
            rid, seconds, _ = st.names[idx]
            SAMAFSystem.add_record(self, rid, {**st.arrays(idx), "seconds": np.float64(seconds)})
            self._loaded.add(idx)
        self._idx_of = {st.names[i][0]: i for i in self._loaded}

    def _reset(self) -> None:
        """Empty the in-memory windows (same model and parameters)."""
        params, disk, checkpoint = dict(self.params), self._disk, self.params.get("checkpoint")
        SAMAFSystem.__init__(self, model=self.model, **{k: v for k, v in params.items() if k != "checkpoint"})
        self.params["checkpoint"] = checkpoint
        self._disk, self._loaded = disk, set()

    _sync_names = _catch_up
    #: The exact search runs over the in-memory codes: a view without some references is a copy (calibrate.without).
    hiding = None

    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """As :meth:`SAMAFSystem.add`; in place, also committed to the file when this returns."""
        SAMAFSystem.add(self, ref_id, audio, sr)
        if self._disk is not None:
            self._commit_loaded(ref_id)

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        SAMAFSystem.add_record(self, ref_id, record)
        if self._disk is not None:
            self._commit_loaded(ref_id)

    def _commit_loaded(self, ref_id: str) -> None:
        record = SAMAFSystem.reference_record(self, ref_id)
        arrays = {"codes": record["codes"], "times": record["times"]}
        idx = self._disk.add(ref_id, float(record["seconds"]), int(record["codes"].shape[0]), arrays,
                              lambda i: self._postings(arrays, i))
        self._loaded.add(idx)
        self._idx_of[ref_id] = idx

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        return SAMAFSystem.reference_record(self, ref_id)

    def duration_s(self, ref_id: str) -> float:
        return float(self._ref_seconds[self._ref_pos[ref_id]])

    def remove(self, ref_ids: list[str]) -> None:
        """Delete ``ref_ids`` from the file in one transaction, then rebuild the in-memory index without them."""
        super().remove(ref_ids)

    def stats(self) -> dict[str, Any]:
        out = SAMAFSystem.stats(self)
        if self._disk is not None:
            out.update({"file_bytes": self._disk.file_bytes(), "in_place": True})
        return out

    def identify(self, audio: np.ndarray, sr: int) -> Any:
        if self._disk is not None:
            self._catch_up()
        return SAMAFSystem.identify(self, audio, sr)


def describe(st: Store) -> tuple[dict, list[str]]:
    """:meth:`SAMAFSystem.stats` and the references of a stored SAMAF database, without its model or codes."""
    from .systems.samaf import _stats

    names = [st.names[i] for i in sorted(st.names)]
    n = sum(c for _, _, c in names)
    width = int(st.meta["params"]["bits"]) // 8
    stats = _stats(dict(st.meta["params"]), dict(st.meta["model_config"]), len(names), n, n * (width + 8),
                   float(sum(s for _, s, _ in names)))
    return {**stats, "file_bytes": st.file_bytes(), "in_place": True}, [r for r, _, _ in names]

