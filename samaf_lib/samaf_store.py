"""SAMAF's database kept in an LMDB file by the store layer of ``samaf_lib.lmdb_store``, for the toolkit.

SAMAF files no postings: its search is a faiss binary index over every stored code, which lives in memory. So
:class:`SAMAFOnDisk` keeps the codes and times of each reference in the store (and its model, so that the file
is the whole database), reads them once when it opens, and from then on appends each new reference to the file
in one committed transaction, as the other systems do: an add writes that reference, never the database again.
At 128 bits and a 0.25-s hop that is 24 bytes per window, 345 MB per 1,000 hours.

Search. ``index=flat`` (the default) searches exactly. ``index=ivf`` (``samaf index --param index=ivf``) is for
archives: an exact flat index until the database holds 256 windows per list (262,144 windows, about 18 hours at a
0.25-s hop, where the exact search still answers a 5-s query in about 10 ms), then a faiss ``IndexBinaryIVF`` of
``IVF_NLIST`` lists (1,024), trained once on the windows stored by then, searching ``IVF_NPROBE`` lists (64).
Its centroids are kept in the store, and every reference committed after the training keeps the list of each of
its windows beside its codes, so opening fills the lists without a distance computation and an add costs the
same at any size. :class:`GrowingIVF` is that index.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .hashing import HammingIndex, _as_numpy, hamming
from .lmdb_store import OnDisk, Store
from .numpy_encoder import NumpyEncoder
from .systems.samaf import SAMAFSystem



class GrowingIVF:
    """A Hamming index that is exact (``IndexBinaryFlat``) until it holds ``train_at`` codes and an
    ``IndexBinaryIVF`` from then on (see the module docstring). The interface of
    :class:`samaf_lib.hashing.HammingIndex` that :class:`SAMAFSystem` uses: ``add(codes, ids)``,
    ``search(codes, k)``, ``ntotal``; plus ``assign`` and the trained ``centroids``.

    Parameters
    ----------
    bits : int
    nlist, nprobe, train_at : int
        Lists, lists searched, codes held when it trains (0: 256 x ``nlist``, as many as faiss trains on).
    centroids : np.ndarray, optional
        ``(nlist, bits / 8)`` uint8: an index trained before (read from the store).
    on_trained : callable, optional
        Called with the centroids when it trains.
    """

    kind = "growing-ivf"

    def __init__(self, bits: int, nlist: int = 1024, nprobe: int = 64, train_at: int = 0,
                 centroids: np.ndarray | None = None, on_trained: Any = None) -> None:
        import faiss

        for name, v in (("ivf_nlist", nlist), ("ivf_nprobe", nprobe)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if isinstance(train_at, bool) or not isinstance(train_at, (int, np.integer)) or train_at < 0:
            raise ValueError(f"ivf_train_at: expected a non-negative integer, got {train_at!r}")
        self.bits, self.nlist, self.nprobe = int(bits), int(nlist), int(min(nprobe, nlist))
        self.train_at = int(train_at) or 256 * self.nlist
        if self.train_at < self.nlist:
            raise ValueError(f"ivf_train_at: {train_at} is below ivf_nlist={nlist}; an IVF needs a code per list")
        self.on_trained = on_trained
        self._faiss = faiss
        self._flat: HammingIndex | None = HammingIndex(self.bits, kind="flat")  # until it trains
        self._ivf = None
        self.centroids: np.ndarray | None = None
        if centroids is not None:
            self._make_ivf(np.ascontiguousarray(centroids, np.uint8))

    @property
    def trained(self) -> bool:
        return self._ivf is not None

    @property
    def ntotal(self) -> int:
        return int(self._ivf.ntotal if self._ivf is not None else self._flat.ntotal)

    def __len__(self) -> int:
        return self.ntotal

    def _make_ivf(self, centroids: np.ndarray) -> None:
        if centroids.shape != (self.nlist, self.bits // 8):
            raise ValueError(f"IVF centroids shaped {centroids.shape}, expected ({self.nlist}, {self.bits // 8})")
        quantizer = self._faiss.IndexBinaryFlat(self.bits)
        quantizer.add(centroids)
        ivf = self._faiss.IndexBinaryIVF(quantizer, self.bits, self.nlist)
        ivf.is_trained = True
        ivf.nprobe = self.nprobe
        self._ivf, self.centroids, self._quantizer = ivf, centroids, quantizer

    def assign(self, codes: np.ndarray) -> np.ndarray:
        """The list of each code (int64), from the trained centroids."""
        if self._ivf is None:
            raise ValueError("the IVF index is not trained yet")
        c = np.ascontiguousarray(codes, np.uint8)
        if not c.shape[0]:
            return np.zeros(0, np.int64)
        _, lists = self._quantizer.search(c, 1)
        return lists[:, 0].astype(np.int64)

    def add(self, codes: np.ndarray, ids: np.ndarray, lists: np.ndarray | None = None) -> np.ndarray | None:
        """Add packed codes with their int64 ids; ``lists`` (their IVF lists) saves the assignment when known.

        Returns the IVF lists of the codes added (None while the index is still flat), for the caller to keep."""
        c = np.ascontiguousarray(codes, np.uint8)
        ids = np.ascontiguousarray(ids, np.int64).reshape(-1)
        if c.ndim != 2 or c.shape[1] != self.bits // 8 or ids.shape[0] != c.shape[0]:
            raise ValueError(f"codes must be (n, {self.bits // 8}) uint8 with n ids, got {c.shape}, {ids.shape}")
        if not c.shape[0]:
            return None if self._ivf is None else np.zeros(0, np.int64)
        if self._ivf is None:
            self._flat.add(c, ids)
            return self._train()[-c.shape[0]:] if self._flat.ntotal >= self.train_at else None
        a = self.assign(c) if lists is None else np.ascontiguousarray(lists, np.int64).reshape(-1)
        if a.shape[0] != c.shape[0] or (a.size and (a.min() < 0 or a.max() >= self.nlist)):
            raise ValueError("lists must give one IVF list in [0, nlist) per code")
        sp = self._faiss.swig_ptr
        self._ivf.add_core(c.shape[0], sp(c), sp(ids), sp(a))
        return a

    def _train(self) -> np.ndarray:
        """Train on the codes held so far (up to 256 per list, evenly spaced), move them into the IVF and return
        their lists."""
        codes = np.ascontiguousarray(self._flat._index.reconstruct_n(0, self._flat.ntotal), np.uint8)
        ids = self._flat._ids
        n_train = min(codes.shape[0], 256 * self.nlist)
        sample = codes[np.linspace(0, codes.shape[0] - 1, n_train).round().astype(np.int64)]
        quantizer = self._faiss.IndexBinaryFlat(self.bits)
        trainer = self._faiss.IndexBinaryIVF(quantizer, self.bits, self.nlist)
        trainer.train(np.ascontiguousarray(sample))
        centroids = np.ascontiguousarray(quantizer.reconstruct_n(0, self.nlist), np.uint8)
        self._make_ivf(centroids)
        self._flat = None
        lists = self.add(codes, ids)
        if self.on_trained is not None:
            self.on_trained(centroids)
        return lists

    def search(self, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`samaf_lib.hashing.HammingIndex.search`: ``(distances, ids)``, ``bits + 1`` / ``-1`` padding."""
        if self._ivf is None:
            return self._flat.search(codes, k)
        c = np.ascontiguousarray(codes, np.uint8)
        dist = np.full((c.shape[0], k), self.bits + 1, np.int32)
        out = np.full((c.shape[0], k), -1, np.int64)
        kk = min(int(k), self.ntotal)
        if c.shape[0] and kk:
            d, found = self._ivf.search(c, kk)  # the ids given to add_core
            ok = found >= 0
            dist[:, :kk] = np.where(ok, d, self.bits + 1)
            out[:, :kk] = np.where(ok, found, -1)
        return dist, out


class HidingIndex:
    """A Hamming index seen without some of its ids (the windows of references a view hides); it never adds.

    The exact flat index leaves them out inside faiss (an ``IDSelector``); the others (faiss's binary IVF and
    multi-hash indexes take no selector) search more neighbours than asked, ``2 k`` and then four times as many
    each round, until every query has ``k`` visible ones or none is left to find: the ``k`` nearest visible
    neighbours the index reaches, which is what the same index would return with the hidden ids deleted.
    """

    def __init__(self, inner: Any, hidden_ids: np.ndarray) -> None:
        import faiss

        self.inner, self.kind, self.bits = inner, inner.kind, inner.bits
        self._hidden = np.unique(np.asarray(hidden_ids, np.int64))
        self._faiss_flat = None
        flat = inner._flat if isinstance(inner, GrowingIVF) and not inner.trained else inner
        if isinstance(flat, HammingIndex) and flat.kind == "flat":
            # a selector acts on the positions faiss stores, which map to ids through flat._ids
            pos = np.flatnonzero(np.isin(flat._ids, self._hidden)).astype(np.int64)
            params = faiss.SearchParameters()
            self._sel_keep = faiss.IDSelectorBatch(pos)  # kept alive for as long as the selector uses it
            params.sel = faiss.IDSelectorNot(self._sel_keep)
            self._faiss_flat, self._params = flat, params

    @property
    def ntotal(self) -> int:
        return int(self.inner.ntotal) - int(self._hidden.size)

    def __len__(self) -> int:
        return self.ntotal

    def add(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError("a view of a database does not add windows; add to the database itself")

    def search(self, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`samaf_lib.hashing.HammingIndex.search`, without the hidden ids."""
        c = np.ascontiguousarray(codes, np.uint8)
        if not self._hidden.size:
            return self.inner.search(c, k)
        nq = c.shape[0]
        dist = np.full((nq, k), self.bits + 1, np.int32)
        out = np.full((nq, k), -1, np.int64)
        kk = min(int(k), self.ntotal)
        if not nq or kk <= 0:
            return dist, out
        if self._faiss_flat is not None:
            flat = self._faiss_flat
            d, pos = flat._index.search(c, kk, params=self._params)
            found = pos >= 0
            dist[:, :kk] = np.where(found, d, self.bits + 1)
            out[:, :kk] = np.where(found, flat._ids[np.clip(pos, 0, None)], -1)
            return dist, out
        want = 2 * int(k)
        while True:
            d, ids = self.inner.search(c, want)
            keep = (ids >= 0) & ~np.isin(ids, self._hidden)
            enough = keep.sum(axis=1) >= k
            exhausted = (ids < 0).any(axis=1)  # the index had no more to give this query
            if bool(np.all(enough | exhausted)) or want >= int(self.inner.ntotal):
                break
            want = min(4 * want, int(self.inner.ntotal))
        for i in range(nq):
            j = np.flatnonzero(keep[i])[:k]
            dist[i, :j.size], out[i, :j.size] = d[i, j], ids[i, j]
        return dist, out


class SAMAFOnDisk(OnDisk, SAMAFSystem):
    """SAMAF with its database in a :class:`~samaf_lib.lmdb_store.Store` (see the module docstring).
    Constructed directly, it is the in-memory :class:`SAMAFSystem`."""

    KEY = ">u4"
    ROW = [("ref", ">u4")]
    NAMES = "_refs"
    #: ``index=ivf``: lists, lists searched, windows held when it trains (0: 256 per list); see the module docstring.
    IVF_NLIST, IVF_NPROBE, IVF_TRAIN_AT = 1024, 64, 0  # 0: 256 per list

    def __init__(self, *args: Any, index: str = "flat", **kwargs: Any) -> None:
        SAMAFSystem.__init__(self, *args, index="flat" if index == "ivf" else index, **kwargs)
        if index == "ivf":
            self.params["index"] = "ivf"
            self._index = GrowingIVF(self.bits, self.IVF_NLIST, self.IVF_NPROBE, self.IVF_TRAIN_AT)
        self._known_lists: dict[int, np.ndarray] = {}  # first row -> stored IVF lists of a reference's windows

    def _install_ivf(self) -> None:
        """With ``index=ivf``: the growing index, trained already when the store holds its centroids."""
        if self.params.get("index") != "ivf":
            return
        data = self._disk.extra("ivf_centroids") if self._disk is not None else None
        centroids = (np.frombuffer(data, np.uint8).reshape(self.IVF_NLIST, self.bits // 8)
                     if data is not None else None)
        self._index = GrowingIVF(self.bits, self.IVF_NLIST, self.IVF_NPROBE, self.IVF_TRAIN_AT, centroids,
                                 on_trained=self._keep_centroids)

    def _keep_centroids(self, centroids: np.ndarray) -> None:
        if self._disk is not None and self._disk.writable:
            self._disk.put_extra("ivf_centroids", centroids.tobytes())

    def _sync_index(self) -> np.ndarray | None:
        """Add the windows stored since the last sync to the index, with the IVF lists the store kept for them;
        return the lists of the windows added (None while the index is flat)."""
        n = len(self._code_rows)
        if self._indexed >= n or not isinstance(self._index, GrowingIVF):
            SAMAFSystem._sync_index(self)
            return None
        known = None
        if self._index.trained:
            known = np.full(n - self._indexed, -1, np.int64)
            for first in [f for f in self._known_lists if f >= self._indexed]:
                lists = self._known_lists.pop(first)
                known[first - self._indexed:first - self._indexed + lists.size] = lists
            todo = known < 0
            if todo.any():
                known[todo] = self._index.assign(self._codes[self._indexed:][todo])
        else:
            self._known_lists.clear()  # stored lists need the stored centroids; without them the index trains anew
        lists = self._index.add(self._codes[self._indexed:], np.arange(self._indexed, n, dtype=np.int64), known)
        self._indexed = n
        return lists

    def _postings(self, record: dict[str, np.ndarray], idx: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(0, self.KEY), np.zeros(0, self.ROW)  # searched by the in-memory index, not by hash

    @classmethod
    def _meta(cls, system: Any) -> dict[str, Any]:
        return {**super()._meta(system), "model_config": system.model.config}

    @classmethod
    def _extras(cls, system: Any) -> dict[str, bytes]:
        from .io import save_npz

        buf = io.BytesIO()
        save_npz(buf, False, **{k: _as_numpy(v) for k, v in system.model.state_dict().items()})
        return {"model": buf.getvalue()}

    @classmethod
    def _from_store(cls, st: Store) -> SAMAFOnDisk:
        """The system of a store. Opened read-only (to answer queries) it hashes with the stored model's encoder
        in numpy (:class:`samaf_lib.numpy_encoder.NumpyEncoder`), so that a one-clip ``samaf identify`` does not
        import torch; opened to write, with the model in torch (faster per window, for indexing)."""
        data = st.extra("model")
        if data is None:
            raise ValueError(f"{st.path}: no model stored")
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            state = {k: np.array(z[k]) for k in z.files}
        if st.writable:
            import torch

            from .model import load_state, model_from_config

            model = model_from_config(st.meta["model_config"])
            load_state(model, {k: torch.from_numpy(v) for k, v in state.items()}, source=str(st.path))
        else:
            model = NumpyEncoder(st.meta["model_config"], state)
        params = dict(st.meta["params"])
        if isinstance(model, NumpyEncoder):
            params["device"] = "cpu"  # where the numpy encoder runs, whatever the database was built on
        system = cls(model=model, **{k: v for k, v in params.items() if k != "checkpoint"})
        system.params["checkpoint"] = params.get("checkpoint")
        system._disk = st
        system._install_ivf()
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
            arrays = st.arrays(idx)
            lists = arrays.pop("lists", None)
            if lists is not None:
                self._known_lists[len(self._code_rows)] = lists.astype(np.int64)
            SAMAFSystem.add_record(self, rid, {**arrays, "seconds": np.float64(seconds)})
            self._loaded.add(idx)
        self._idx_of = {st.names[i][0]: i for i in self._loaded}

    def _reset(self) -> None:
        """Empty the in-memory windows (same model and parameters)."""
        params, disk, checkpoint = dict(self.params), self._disk, self.params.get("checkpoint")
        SAMAFOnDisk.__init__(self, model=self.model, **{k: v for k, v in params.items() if k != "checkpoint"})
        self.params["checkpoint"] = checkpoint
        self._disk, self._loaded = disk, set()
        self._install_ivf()

    _sync_names = _catch_up
    #: Positions (into ``_refs``) of the references a view made by :meth:`hiding` leaves out.
    _hidden_pos: frozenset[int] = frozenset()

    def hiding(self, names: set[str]) -> SAMAFOnDisk:
        """A view of this database without the references ``names`` (what the calibration queries held-out
        references against): it shares this object's codes, times, model and index, nothing is copied, and its
        searches leave the hidden references' windows out (:class:`HidingIndex`), so that it answers as an
        in-memory copy without them would. Read it only (``identify``, ``references``); do not add to it or close
        it, and do not add to this database while the view is in use."""
        if self._hidden_pos:
            raise ValueError("hiding: this is already a view; make views of the database itself")
        if self._disk is not None:
            self._catch_up()
        self._sync_index()  # every stored window in the shared index: the view never adds to it
        hidden = frozenset(self._ref_pos[n] for n in names if n in self._ref_pos)
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view._hidden_pos = hidden
        spans = [self._ref_span[p] for p in sorted(hidden)]
        rows = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in spans]) if spans else np.zeros(0, np.int64)
        view._hidden_rows = rows
        view._index = HidingIndex(self._index, rows)
        view._visible = [r for i, r in enumerate(self._refs) if i not in hidden]
        view._visible_set = frozenset(view._visible)
        return view

    def _check_not_view(self, what: str) -> None:
        if self._hidden_pos:
            raise ValueError(f"{what}: this is a read-only view of a database (calibrate.without); {what} the "
                             f"database itself")

    def references(self) -> list[str]:
        return list(self._visible) if self._hidden_pos else SAMAFSystem.references(self)

    def __contains__(self, ref_id: object) -> bool:
        return ref_id in self._visible_set if self._hidden_pos else SAMAFSystem.__contains__(self, ref_id)

    def __len__(self) -> int:
        return len(self._visible) if self._hidden_pos else SAMAFSystem.__len__(self)

    def _chance_agreement(self, codes: np.ndarray) -> float:
        """As :meth:`SAMAFSystem._chance_agreement`; in a view, over the windows it shows (the same sample a copy
        without the hidden references would draw)."""
        if not self._hidden_pos:
            return SAMAFSystem._chance_agreement(self, codes)
        h = np.sort(self._hidden_rows)
        n = self._codes.shape[0] - h.size
        if n <= 0:
            return 0.0
        v = np.linspace(0, n - 1, min(n, 256)).astype(np.int64)  # positions among the visible windows
        rows = v + np.searchsorted(h - np.arange(h.size), v, side="right")  # their rows among all windows
        return float(np.mean(1.0 - 2.0 * hamming(codes, self._codes[rows]) / self.bits))

    def add(self, ref_id: str, audio: np.ndarray, sr: int) -> None:
        """As :meth:`SAMAFSystem.add`; in place, also committed to the file when this returns."""
        self._check_not_view("add")
        SAMAFSystem.add(self, ref_id, audio, sr)
        if self._disk is not None:
            self._commit_loaded(ref_id)

    def add_record(self, ref_id: str, record: dict[str, np.ndarray]) -> None:
        self._check_not_view("add_record")
        SAMAFSystem.add_record(self, ref_id, record)
        if self._disk is not None:
            self._commit_loaded(ref_id)

    def _commit_loaded(self, ref_id: str) -> None:
        record = SAMAFSystem.reference_record(self, ref_id)
        arrays = {"codes": record["codes"], "times": record["times"]}
        if isinstance(self._index, GrowingIVF):
            # the writer trains the IVF when the database reaches its size, and stores it; the lists the index
            # gave this reference's windows are kept beside its codes
            lists = self._sync_index()
            if self._index.trained:
                m = record["codes"].shape[0]
                lists = lists[-m:] if lists is not None and lists.size >= m else self._index.assign(record["codes"])
                arrays["lists"] = lists.astype(np.uint16 if self.IVF_NLIST <= 1 << 16 else np.int32)
        idx = self._disk.add(ref_id, float(record["seconds"]), int(record["codes"].shape[0]), arrays,
                              lambda i: self._postings(arrays, i))
        self._loaded.add(idx)
        self._idx_of[ref_id] = idx

    def reference_record(self, ref_id: str) -> dict[str, np.ndarray]:
        if self._hidden_pos and ref_id not in self._visible_set:
            raise KeyError(ref_id)
        return SAMAFSystem.reference_record(self, ref_id)

    def duration_s(self, ref_id: str) -> float:
        return float(self._ref_seconds[self._ref_pos[ref_id]])

    def remove(self, ref_ids: list[str]) -> None:
        """Delete ``ref_ids`` from the file in one transaction, then rebuild the in-memory index without them."""
        self._check_not_view("remove")
        super().remove(ref_ids)

    def stats(self) -> dict[str, Any]:
        out = SAMAFSystem.stats(self)
        if self._disk is not None:
            out.update({"file_bytes": self._disk.file_bytes(), "in_place": True})
        return out

    def identify(self, audio: np.ndarray, sr: int) -> Any:
        if self._disk is not None and not self._hidden_pos:  # a view reads what the database held when it was made
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

