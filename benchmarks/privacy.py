"""Privacy benchmark on digits: test accuracy and membership-inference AUC against epsilon.

Same run, same split: a non-private baseline trained to overfit (the membership-inference target),
DP-SGD (sample-level, Opacus) and client-level DP (DP-FedAvg over simulated providers, central
noise, Opacus RDP accounting) at several epsilons with delta = 1e-5, each audited with the
loss-threshold and shadow-model attacks. Also runs the secure aggregation benchmark. Prints JSON
and writes docs/results/privacy.md with a plot (docs/results/privacy.png).

DEAI_SMALL=1: fewer epsilons and shadows, a smaller secure aggregation (CI form).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from deai.learn.data import load_dataset, split_dataset, standardize
from deai.learn.models import build_model
from deai.learn.privacy import ClientDP, PrivacyAccountant, noise_multiplier_for
from deai.learn.privacy.audit import loss_threshold_audit, shadow_model_audit
from deai.learn.privacy.dpsgd import DPSGDConfig, train_dp_sgd

ROOT = Path(__file__).resolve().parents[1]
DELTA = 1e-5
SMALL = os.environ.get("DEAI_SMALL") == "1"
SEED = 0

# DP-SGD recipe (small on purpose: ~1,200 samples): logistic regression on standardized features,
# a large sampling rate, few epochs, clip 1, high lr.
DPSGD = dict(epochs=30, lr=2.0, sample_rate=0.5, max_grad_norm=1.0)
# Client-level DP recipe: 200 providers of ~6 samples, half of them per round, 5 local GD steps.
PROVIDERS, ROUNDS, PARTICIPATION, LOCAL_STEPS, LOCAL_LR, CLIP = 200, 40, 0.5, 5, 0.5, 1.0


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def nonprivate(x, y, seed):
    """Full-batch SGD for many epochs: the target overfits its half so membership leaks."""
    model = build_model("logreg", x.shape[1], 10, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(400 if not SMALL else 150):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@functools.cache
def noise_for(eps: float, sample_rate: float, steps: int) -> float:
    """Opacus's noise search, once per setting (shadow models reuse the target's noise)."""
    return noise_multiplier_for(eps, DELTA, sample_rate, steps)


def dpsgd(x, y, seed, eps):
    model = build_model("logreg", x.shape[1], 10, seed=seed)
    batch = round(DPSGD["sample_rate"] * len(x))
    steps = DPSGD["epochs"] * math.ceil(1 / DPSGD["sample_rate"])
    z = noise_for(eps, batch / len(x), steps)
    res = train_dp_sgd(model, x, y, DPSGDConfig(**DPSGD, noise_multiplier=z, delta=DELTA), seed=seed)
    return model, res.epsilon, res.noise_multiplier


def client_dp(x, y, seed, eps, account=True):
    """DP-FedAvg with logistic regression, vectorized over providers (one weight copy per provider)."""
    g = torch.Generator().manual_seed(seed)
    owner = torch.randperm(len(x), generator=g) % PROVIDERS
    base = build_model("logreg", x.shape[1], 10, seed=seed)
    w = torch.cat([base.linear.weight, base.linear.bias[:, None]], 1).detach().double()  # [10, 65]
    xb = torch.cat([x, torch.ones(len(x), 1)], 1).double()
    masks = torch.stack([(owner == p) for p in range(PROVIDERS)]).double()  # [P, N]
    m = round(PARTICIPATION * PROVIDERS)
    z = noise_for(eps, PARTICIPATION, ROUNDS) if eps != float("inf") else 0.0
    dp = ClientDP(clip=CLIP, noise_multiplier=z, mode="central", expected_count=m)
    acc = PrivacyAccountant(delta=DELTA)
    onehot = F.one_hot(y, 10).double()
    for _ in range(ROUNDS):
        chosen = torch.randperm(PROVIDERS, generator=g)[:m]
        local = w.expand(m, *w.shape).clone()
        mk = masks[chosen]  # [m, N]
        for _ in range(LOCAL_STEPS):  # local GD on each provider's own samples
            p = torch.softmax(torch.einsum("nf,mcf->mnc", xb, local), -1)
            grad = torch.einsum("mn,mnc,nf->mcf", mk, p - onehot, xb) / mk.sum(1).clamp(min=1)[:, None, None]
            local -= LOCAL_LR * grad
        updates = (local - w).reshape(m, -1)
        w = w + dp.aggregate(updates, g).reshape(w.shape)
        if z > 0 and account:  # the (epsilon, delta) after every round, as the protocol reports it
            acc.step(z, PARTICIPATION)
    base.linear.weight.data, base.linear.bias.data = w[:, :-1].float(), w[:, -1].float()
    return base, acc.epsilon if z > 0 else float("inf"), z


def audit(model, members, non_members, shadow, train_fn, shadows):
    loss = loss_threshold_audit(model, members, non_members, seed=SEED)
    shadow_res = shadow_model_audit(model, members, non_members, shadow, train_fn, shadows=shadows, seed=SEED)
    return loss.auc, shadow_res.auc


def secagg_report() -> dict:
    spec = importlib.util.spec_from_file_location("bench_secagg", ROOT / "benchmarks" / "secagg.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        return mod.main()


def main() -> dict:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    splits = split_dataset(load_dataset("digits"), val=0.0, test=1 / 3, seed=SEED)
    train, test = standardize(splits.train, splits.test)
    x, y, xt, yt = train.x, train.y, test.x, test.y
    half = len(xt) // 2
    members, non_members, shadow = (x, y), (xt[:half], yt[:half]), (xt[half:], yt[half:])
    epsilons = [3.0] if SMALL else [0.5, 1.0, 3.0, 8.0]
    shadows = 2 if SMALL else 4
    rows = []

    base = nonprivate(x, y, SEED)
    lt, sh = audit(base, members, non_members, shadow, nonprivate, shadows)
    rows.append(
        dict(
            method="non-private",
            epsilon=None,
            accuracy=accuracy(base, xt, yt),
            mia_loss_auc=lt,
            mia_shadow_auc=sh,
        )
    )
    for eps in epsilons:
        model, spent, z = dpsgd(x, y, SEED, eps)
        lt, sh = audit(
            model, members, non_members, shadow, lambda a, b, s, e=eps: dpsgd(a, b, s, e)[0], shadows
        )
        rows.append(
            dict(
                method="dp-sgd",
                epsilon=spent,
                target_epsilon=eps,
                noise_multiplier=z,
                accuracy=accuracy(model, xt, yt),
                mia_loss_auc=lt,
                mia_shadow_auc=sh,
            )
        )
        model, spent, z = client_dp(x, y, SEED, eps)
        lt, sh = audit(
            model,
            members,
            non_members,
            shadow,
            lambda a, b, s, e=eps: client_dp(a, b, s, e, account=False)[0],
            shadows,
        )
        rows.append(
            dict(
                method="client-dp",
                epsilon=spent,
                target_epsilon=eps,
                noise_multiplier=z,
                accuracy=accuracy(model, xt, yt),
                mia_loss_auc=lt,
                mia_shadow_auc=sh,
            )
        )
    fed, _, _ = client_dp(x, y, SEED, float("inf"))
    rows.append(
        dict(
            method="federated non-private",
            epsilon=None,
            accuracy=accuracy(fed, xt, yt),
            mia_loss_auc=loss_threshold_audit(fed, members, non_members, seed=SEED).auc,
            mia_shadow_auc=None,
        )
    )
    at3 = next(r for r in rows if r["method"] == "dp-sgd" and r["target_epsilon"] == 3.0)
    report = {
        "dataset": "digits",
        "train_samples": len(x),
        "test_samples": len(xt),
        "delta": DELTA,
        "dpsgd_recipe": DPSGD | {"model": "logreg", "accountant": "rdp"},
        "client_dp_recipe": dict(
            providers=PROVIDERS,
            rounds=ROUNDS,
            participation=PARTICIPATION,
            local_steps=LOCAL_STEPS,
            local_lr=LOCAL_LR,
            clip=CLIP,
            mode="central",
        ),
        "rows": rows,
        "dpsgd_eps3_gap_points": 100 * (rows[0]["accuracy"] - at3["accuracy"]),
        "secagg": secagg_report(),
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(report, indent=2))
    if not SMALL or "--write" in sys.argv:
        write_page(report)
    return report


def write_page(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = ROOT / "docs" / "results"
    out.mkdir(parents=True, exist_ok=True)
    rows = report["rows"]
    base = rows[0]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for method, style in (("dp-sgd", "o-"), ("client-dp", "s--")):
        rs = [r for r in rows if r["method"] == method]
        eps = [r["target_epsilon"] for r in rs]
        a1.plot(eps, [100 * r["accuracy"] for r in rs], style, label=method)
        a2.plot(eps, [r["mia_loss_auc"] for r in rs], style, label=f"{method} loss-threshold")
        a2.plot(eps, [r["mia_shadow_auc"] for r in rs], style, alpha=0.5, label=f"{method} shadow")
    a1.axhline(100 * base["accuracy"], color="k", ls=":", label="non-private")
    a2.axhline(base["mia_loss_auc"], color="k", ls=":", label="non-private loss-threshold")
    a2.axhline(0.5, color="gray", lw=0.8)
    for ax, title in ((a1, "test accuracy (%)"), (a2, "membership-inference AUC")):
        ax.set_xscale("log")
        ax.set_xlabel("epsilon (delta = 1e-5)")
        ax.set_title(title)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "privacy.png", dpi=110)
    lines = [
        "# Privacy results",
        "",
        "Generated by `benchmarks/privacy.py` (one run, one seed; numbers below are that run's).",
        f"Digits: {report['train_samples']} training samples (members), "
        f"{report['test_samples']} test samples "
        "(half are the non-members audited, half the attacker's shadow data). delta = 1e-5.",
        "",
        "![accuracy and MIA AUC vs epsilon](privacy.png)",
        "",
        "| method | target eps | eps spent | noise mult. | test acc. | MIA AUC (loss) | MIA AUC (shadow) |",
        "|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, p=3: "-" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in rows:
        lines.append(
            f"| {r['method']} | {fmt(r.get('target_epsilon'), 1)} | {fmt(r['epsilon'], 2)} | "
            f"{fmt(r.get('noise_multiplier'), 2)} | {100 * r['accuracy']:.1f} | {fmt(r['mia_loss_auc'])} | "
            f"{fmt(r['mia_shadow_auc'])} |"
        )
    s = report["secagg"]
    lines += [
        "",
        f"DP-SGD at epsilon 3 is **{report['dpsgd_eps3_gap_points']:.1f} points** "
        "below the non-private baseline "
        "(goal: within 5).",
        "",
        f"DP-SGD recipe: `{json.dumps(report['dpsgd_recipe'])}`.  ",
        f"Client-level DP recipe: `{json.dumps(report['client_dp_recipe'])}`.",
        "",
        "Reading the audit: the logistic-regression target overfits digits only a little, so even the "
        "non-private model leaks weakly (AUC about 0.55); with ~300 member/non-member pairs an AUC "
        "is uncertain by about +-0.03, so values near 0.5 (including slightly below) mean "
        "'no leakage this attack can detect'. The loss-threshold AUC moves toward 0.5 as epsilon "
        "shrinks. Client-level DP protects a provider's whole contribution; with only 200 providers "
        "its noise costs more accuracy than DP-SGD's at small epsilon (it needs many more providers).",
        "",
        "## Secure aggregation",
        "",
        f"{s['providers']} providers x {s['dim']:,} parameters, {100 * s['dropout_rate']:.0f}% dropouts "
        f"({s['dropped_before_masked_input']} before sending their masked input, "
        f"{s['dropped_after_masked_input']} after), neighbourhood degree {s['degree']}, "
        f"threshold {s['threshold']}, "
        f"{s['ring_bits']}-bit ring with {s['frac_bits']} fractional bits.",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| recovered sum = ring sum of quantized inputs (exact) | {s['exact_ring_sum']} |",
        f"| max abs error vs float sum / quantization bound | {s['max_abs_error']:.2e} / "
        f"{s['error_bound']:.2e} |",
        f"| bytes a provider sends / plain float32 update | {s['provider_sent_bytes_max']:,} / "
        f"{s['plain_update_bytes']:,} = **{s['bandwidth_expansion']:.3f}x** |",
        f"| provider time / plain sum time | {s['provider_time_ratio']:.2f}x |",
        f"| server time / plain sum time | {s['server_time_ratio']:.2f}x |",
        "",
        "Bonawitz et al. (CCS 2017) report 1.73x bandwidth expansion with 16-bit inputs; "
        "SecAgg+ (Bell et al.) "
        "keeps per-provider cost polylogarithmic. Times are ratios to the plain (float32) sum of the same "
        "updates measured in the same run.",
        "",
    ]
    (out / "privacy.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
