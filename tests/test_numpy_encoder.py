"""SAMAF's encoder in numpy (``samaf_lib.numpy_encoder``): the same activations and bits as the torch model, a
store opened read-only answers with it as the torch model does, and a one-clip ``samaf identify`` on a SAMAF
database runs without importing torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from samaf_lib.audio import write_audio
from samaf_lib.features import Standardiser, mfcc
from samaf_lib.hashing import binarise
from samaf_lib.model import SAMAF
from samaf_lib.numpy_encoder import NumpyEncoder
from samaf_lib.samaf_store import SAMAFOnDisk
from samaf_lib.systems.samaf import SAMAFSystem

SR = 16000


def _model(speech_bank, seed: int = 0, **config) -> SAMAF:
    torch.manual_seed(seed)
    m = SAMAF(**config)
    st = Standardiser.fit(np.concatenate([mfcc(a, SR) for a in list(speech_bank.values())[:4]]),
                          cmn=bool(config.get("cmn", False)))
    m.set_standardiser(st.mean, st.std)
    return m.eval()


def _numpy(model: SAMAF) -> NumpyEncoder:
    return NumpyEncoder(model.config, {k: v.numpy() for k, v in model.state_dict().items()})


@pytest.mark.parametrize("config", [{"bits": 128, "cmn": True}, {"bits": 64}, {"bits": 32, "hidden": 48,
                                                                                  "layers": 2, "cmn": True}])
def test_the_numpy_encoder_computes_the_torch_activations(speech_bank, config):
    model = _model(speech_bank, **config)
    windows = np.concatenate([mfcc(a, SR, hop_s=0.1) for a in list(speech_bank.values())[4:8]])
    with torch.inference_mode():
        z_torch = model.hash_windows(windows, batch_size=97)
    z_np = _numpy(model).hash_windows(windows, batch_size=64)
    assert z_np.dtype == np.float32 and z_np.shape == z_torch.shape == (windows.shape[0], config["bits"])
    assert np.max(np.abs(z_np - z_torch)) < 1e-5
    # a bit can differ only where |z| is within the rounding of 0
    differ = binarise(z_np) != binarise(z_torch)
    assert np.all(np.abs(z_torch[differ]) < 1e-5)
    assert differ.mean() < 1e-4


def test_bad_weights_and_inputs_are_named(speech_bank):
    model = _model(speech_bank, bits=64)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="to_code.weight"):
        NumpyEncoder(model.config, {k: v for k, v in state.items() if k != "to_code.weight"})
    with pytest.raises(ValueError, match="encoder.weight_hh_l0"):
        NumpyEncoder(model.config, {**state, "encoder.weight_hh_l0": state["encoder.weight_hh_l0"][:5]})
    with pytest.raises(ValueError, match="lacks"):
        NumpyEncoder({"bits": 64}, state)
    enc = NumpyEncoder(model.config, state)
    with pytest.raises(ValueError, match=r"\(batch, 100, 13\)"):
        enc.hash_windows(np.zeros((2, 50, 13), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        enc.hash_windows(np.full((1, 100, 13), np.nan, np.float32))
    assert enc.hash_windows(np.zeros((0, 100, 13), np.float32)).shape == (0, 64)
    with pytest.raises(ValueError, match="CPU"):
        SAMAFSystem(model=enc, bits=64, device="cuda")
    for m in (enc, model):  # the numpy and the torch model: the same message
        with pytest.raises(ValueError, match="64-bit hashes but bits=128; pass bits=64"):
            SAMAFSystem(model=m, bits=128)


def test_a_store_read_only_answers_with_numpy_as_the_writer_does_with_torch(tmp_path, speech_bank):
    model = _model(speech_bank, bits=128, cmn=True)
    refs = dict(list(speech_bank.items())[:6])
    db = tmp_path / "s.samaf"
    SAMAFOnDisk.create(db, SAMAFSystem(model=model, bits=128, db_hop_s=0.1))
    w = SAMAFOnDisk.open(db, writable=True)
    for rid, a in refs.items():
        w.add(rid, a, SR)
    r = SAMAFOnDisk.open(db)
    assert isinstance(r.model, NumpyEncoder) and isinstance(w.model, SAMAF)
    rng = np.random.default_rng(1)
    for a in refs.values():
        for off, n in ((0.33, 1.0), (1.07, 3.0)):
            q = a[int(off * SR): int((off + n) * SR)]
            q = (q + 0.01 * rng.standard_normal(q.size)).astype(np.float32)
            assert r.identify(q, SR) == w.identify(q, SR)
    w.close()
    r.close()


def test_identify_on_a_samaf_database_does_not_import_torch(tmp_path, speech_bank):
    model = _model(speech_bank, bits=64)
    refs = dict(list(speech_bank.items())[:3])
    db = tmp_path / "s.samaf"
    SAMAFOnDisk.create(db, SAMAFSystem(model=model, bits=64))
    w = SAMAFOnDisk.open(db, writable=True)
    for rid, a in refs.items():
        w.add(rid, a, SR)
    w.close()
    clip = tmp_path / "clip.wav"
    a = list(refs.values())[1]
    write_audio(clip, a[SR: 4 * SR], SR)
    code = ("import sys\nfrom samaf_lib.cli import main\n"
            f"sys.argv = ['samaf', 'identify', {str(clip)!r}, '--db', {str(db)!r}, '--uncalibrated']\n"
            "assert not main()\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "NO-TORCH"
    assert list(refs)[1] in out.stdout
