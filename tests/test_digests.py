"""Per-condition digests of a clusters file (``samaf_lib.digests``): a change in one condition's members changes
that condition's line and the whole array's, and no other."""

from __future__ import annotations

import numpy as np

from samaf_lib.digests import digests
from samaf_lib.io import write_npz


def test_a_changed_member_names_its_condition(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)
    recipe = np.array(["babble:10:+0.010;reverb:large:-0.020"] * 3)
    write_npz(tmp_path / "a.npz", X=X, recipe=recipe)
    Y = X.copy()
    Y[1, 2, 0, 0] = np.nextafter(Y[1, 2, 0, 0], np.float32(np.inf))  # one ulp, in a reverb member
    write_npz(tmp_path / "b.npz", X=Y, recipe=recipe)
    a, b = digests(str(tmp_path / "a.npz")), digests(str(tmp_path / "b.npz"))
    differ = [x.split()[0] for x, y in zip(a, b) if x != y]
    assert differ == ["all", "reverb:large"]
    assert [x.split()[:2] for x in a] == [["all", "9"], ["clean", "3"], ["babble:10", "3"], ["reverb:large", "3"]]
