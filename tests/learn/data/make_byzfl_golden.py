"""Generate ``byzfl_golden.npz``: fixed inputs and ByzFL's outputs for every rule deai also defines.

ByzFL (https://github.com/LPD-EPFL/byzfl, pypi ``byzfl`` 0.0.11) is an independent implementation of
the robust aggregators. Run once, by hand, with ByzFL installed outside the project environment::

    .venv/bin/pip download --no-deps byzfl==0.0.11 -d /tmp/byzfl-dl
    .venv/bin/pip install --no-deps --target /tmp/byzfl /tmp/byzfl-dl/byzfl-0.0.11-py3-none-any.whl
    PYTHONPATH=/tmp/byzfl .venv/bin/python tests/learn/data/make_byzfl_golden.py

(ByzFL's numpy path needs only numpy and scipy, which the project has; its package ``__init__``
also imports its training framework (torchvision), so the aggregator modules are loaded without
running it.) The test suite reads the stored arrays and does not need ByzFL.

Inputs are float32 (what deai aggregates); ByzFL runs on their exact float64 copies, so the
stored outputs are float64 references of the float32 inputs. Parameters follow ByzFL's definitions,
which differ from deai's in places (the test maps them):

- ``Krum(f)`` / ``MultiKrum(f)`` score each row by its ``n - f - 1`` nearest others (deai's
  ``krum(f)`` uses ``n - f - 2``: deai ``f - 1`` matches) and Multi-Krum averages ``n - f`` rows;
- ``GeometricMedian(nu, T)`` starts at zero and runs ``T`` Weiszfeld steps (run here to convergence);
- ``CenteredClipping(L, tau)`` starts at zero, as a fresh deai ``centered_clipping(tau, iters)``;
- ``Bucketing(s)`` shuffles with ``np.random``: the permutation it drew is stored with its output;
- ``NNM(f)`` replaces each row by the mean of its ``n - f`` nearest rows (itself included).

Layout: ``cases`` (names), ``<case>/x`` ``[n, d]`` float32, ``<case>/f`` (int), and
``<case>/<rule>`` outputs; ``<case>/bucketing_perm`` / ``<case>/bucketing_s`` for bucketing.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("byzfl_golden.npz")
GM_NU, GM_STEPS = 1e-6, 3000
CC_PARAMS = ((1.0, 3), (10.0, 1))  # (tau, iterations)
BUCKET_S, BUCKET_SEED = 2, 1234


def load_byzfl():
    """ByzFL's aggregator modules, without its package ``__init__`` (which imports torchvision)."""
    spec = importlib.util.find_spec("byzfl")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("byzfl is not importable: see this file's docstring")
    pkg = types.ModuleType("byzfl")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["byzfl"] = pkg
    from byzfl.aggregators import aggregators, preaggregators

    return aggregators, preaggregators


def make_cases() -> dict[str, tuple[np.ndarray, int]]:
    """Named ``(x, f)`` inputs: IID rows, non-IID clusters, an outlier cluster, one huge row, and
    one huge row added to a colluding group."""
    cases: dict[str, tuple[np.ndarray, int]] = {}
    for seed, (n, f, d) in enumerate([(7, 1, 3), (8, 1, 5), (10, 2, 50), (25, 5, 200)]):
        rng = np.random.default_rng(seed)
        cases[f"iid_n{n}_d{d}"] = (rng.normal(0.5, 1.0, (n, d)).astype(np.float32), f)
    rng = np.random.default_rng(10)
    centres = rng.normal(0.0, 3.0, (2, 64))
    x = centres[np.arange(12) % 2] + rng.normal(0.0, 1.0, (12, 64))
    cases["clusters_n12_d64"] = (x.astype(np.float32), 2)
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, (15, 100))
    x[12:] = x[:12].mean(0) + 5.0 + rng.normal(0.0, 0.01, (3, 100))
    cases["outlier_cluster_n15_d100"] = (x.astype(np.float32), 3)
    for seed, scale in ((12, 1e5), (13, 1e8)):
        rng = np.random.default_rng(seed)
        x = rng.normal(0.0, 1.0, (25, 1000))
        x[24] = scale * rng.normal(0.0, 1.0, 1000)
        cases[f"huge_row_{scale:.0e}_n25_d1000"] = (x.astype(np.float32), 5)
    rng = np.random.default_rng(14)
    x = rng.normal(0.0, 1.0, (25, 1000))
    x[20:] = x[:20].mean(0) + 3.0
    x[20] = 1e5
    cases["huge_row_colluders_n25_d1000"] = (x.astype(np.float32), 5)
    return cases


def run_rules(agg, pre, x32: np.ndarray, f: int) -> dict[str, np.ndarray]:
    """ByzFL's outputs on the float64 copy of ``x32``."""
    x = x32.astype(np.float64)
    n = x.shape[0]
    out = {
        "mean": agg.Average()(x),
        "median": agg.Median()(x),
        "trimmed_mean": agg.TrMean(f)(x),
        "krum": agg.Krum(f)(x),
        "multi_krum": agg.MultiKrum(f)(x),
        "nnm": pre.NNM(f)(x),
        "nnm_trimmed_mean": agg.TrMean(f)(pre.NNM(f)(x)),
        "nnm_multi_krum": agg.MultiKrum(f)(pre.NNM(f)(x)),
    }
    gm = agg.GeometricMedian(nu=GM_NU, T=GM_STEPS)(x)
    gm_half = agg.GeometricMedian(nu=GM_NU, T=GM_STEPS // 2)(x)
    scale = max(1.0, float(np.abs(gm).max()))
    if np.abs(gm - gm_half).max() > 1e-9 * scale:  # converged: more steps would not move it
        raise SystemExit(f"geometric median not converged on n={n}")
    out["geometric_median"] = gm
    for tau, steps in CC_PARAMS:
        out[f"centered_clipping_tau{tau:g}_iters{steps}"] = agg.CenteredClipping(L=steps, tau=tau)(x)
    np.random.seed(BUCKET_SEED)
    out["bucketing"] = pre.Bucketing(BUCKET_S)(x)
    np.random.seed(BUCKET_SEED)
    perm = np.random.permutation(np.arange(n))  # the same draw as the rows' shuffle above
    m = -(-n // BUCKET_S)
    expect = np.stack([x[perm[j * BUCKET_S : (j + 1) * BUCKET_S]].mean(0) for j in range(m)])
    if not np.allclose(expect, out["bucketing"], rtol=0, atol=1e-12 * max(1.0, np.abs(x).max())):
        raise SystemExit("could not recover ByzFL's bucketing permutation")
    out["bucketing_perm"] = perm.astype(np.int64)
    return out


def main() -> None:
    agg, pre = load_byzfl()
    arrays: dict[str, np.ndarray] = {}
    cases = make_cases()
    arrays["cases"] = np.array(sorted(cases))
    for name, (x, f) in sorted(cases.items()):
        arrays[f"{name}/x"] = x
        arrays[f"{name}/f"] = np.array(f, dtype=np.int64)
        arrays[f"{name}/bucketing_s"] = np.array(BUCKET_S, dtype=np.int64)
        for rule, value in run_rules(agg, pre, x, f).items():
            arrays[f"{name}/{rule}"] = np.asarray(value)
    arrays["gm_nu"] = np.array(GM_NU)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(cases)} cases)")


if __name__ == "__main__":
    main()
