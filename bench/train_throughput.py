"""Training throughput of the label-free QPT (loss = DFT energy), and where a step's time goes.

For every molecule x basis x model preset, in a fresh process (so peak RSS is per config):
  * optimiser steps/s after compile (Trainer.run; the first step, which compiles, is
    excluded), the share of that time spent waiting for precomputed conformers
    (Trainer.timing wait_s / step_s) and the background precompute rate (fresh
    conformers/s = Prefetcher items_made / make_seconds, one worker; with `reuse` = 16
    steps per conformer the data pipeline can feed at most rate x 16 steps/s);
  * the same update timed in isolation (no prefetch thread competing for the cores);
  * FLOPs of one step counted on its jaxpr (scan bodies x trip counts) and XLA's
    cost_analysis (counts a loop body once), and the achieved FLOP/s against a peak
    (GPU: --peak-tflops, default 67 = H100/H200 FP64 tensor core; CPU: the measured
    2000 x 2000 float64 matmul rate);
  * a profile: each part timed alone under jit, forward + backward (value_and_grad):
    XC on the grid (energy.xc_energy_and_potential: 'xc_kernel' = forward + backward of
    V_xc, i.e. through the functional's second derivatives; 'xc' = forward E and V_xc),
    J (energy.coulomb), K (energy.exchange), the eigen-solve (linalg.solve_fock), the
    network (qpt.predict_correction, gradient w.r.t. the parameters). One energy-loss
    step differentiates 2 refinement Fock builds, evaluates E[D3] with its gradient and
    runs 3 eigen-solves: step ~ 2 xc_kernel + xc + 3 (J + K + eigh) + network; the
    script prints which part dominates.
  A log-log plot of time per step vs number of AOs with the fitted exponent per preset.
  With --batch-sizes (e.g. 1,4,8) each case is timed at every batch size: conformer-steps/s
  (steps/s x batch) says what a batch buys on this machine; the data schedule's window
  (`TrainConfig.data_schedule`) is the default one, so the feed is B conformers per `reuse`
  steps.

  # the recipe's training grid (level 0, float32) at batch 1, 4 and 8, single-threaded:
  OMP_NUM_THREADS=1 python bench/train_throughput.py --molecules uracil --settings 0:float32 \
      --batch-sizes 1,4,8 --steps 48

  python bench/train_throughput.py          # quick: water, uracil x sto-3g x nano, grid level 1
  python bench/train_throughput.py --full   # 5 molecules x {sto-3g, def2-svp} x {nano, tiny}, level 3
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "train_throughput"
QUICK = dict(molecules=["water", "uracil"], bases=["sto-3g"], models=["nano"], grid_level=1, steps=12)
FULL = dict(
    molecules=["water", "ethanol", "malondialdehyde", "uracil", "benzene"],
    bases=["sto-3g", "def2-svp"],
    models=["nano", "tiny"],
    grid_level=3,
    steps=64,
)
PARTS = ("xc_kernel", "xc", "coulomb", "exchange", "eigh", "network")
# times per energy-loss step (n_refine = 3): the 2 refinement Fock builds are differentiated
# (forward + backward of V_xc = the XC kernel), E[D3] needs E and V_xc (forward only);
# J, K and eigh are counted forward+backward 3 times (an upper bound for J, K).
STEP_COUNT = dict(xc_kernel=2, xc=1, coulomb=3, exchange=3, eigh=3, network=1)


# ----------------------------------------------------------------------------- worker
def _xc_kernel_autodiff(t, f):
    """V_xc as before the explicit kernel VJP: reverse-mode autodiff of the blocks under
    jax.checkpoint (the 'before' column of the XC-kernel profile)."""
    import jax
    import jax.numpy as jnp

    from qpt_nb.dft import kohn_sham as ks

    block, starts = ks._grid_blocks(t)

    def v(x):
        d_lo = x.astype(t.ao.dtype)

        def one(c, st):
            e, a = ks._xc_block(f, *ks._block_slices(t, st, block), d_lo)
            return (c[0] + e, c[1] + a), None

        (_, a), _ = jax.lax.scan(jax.checkpoint(one), (0.0, jnp.zeros_like(x)), starts)
        return a + a.T

    return v


def train_worker(
    molecule,
    basis,
    model,
    grid_level,
    steps,
    reuse,
    sampler,
    eri,
    profile,
    peak_tflops,
    precision="float64",
    batch_size=1,
):
    import jax
    import jax.numpy as jnp

    from qpt_nb.dft.kohn_sham import coulomb, exchange, xc_energy_and_potential
    from qpt_nb.dft.linalg import solve_fock
    from qpt_nb.dft.xc import get_xc
    from qpt_nb.learn.losses import predict_correction
    from qpt_nb.learn.train import TrainConfig, Trainer

    cfg = TrainConfig(
        molecule=molecule,
        basis=basis,
        grid_level=grid_level,
        model=model,
        sampler=sampler,
        reuse=reuse,
        eri=eri,
        precision=precision,
        batch_size=batch_size,
        warmup_steps=10,
        checkpoint_every=10**9,
        log_every=10**9,
    )
    with common.Timer() as t_init:
        tr = Trainer(cfg)
    tr.run(1)  # compiles; first conformer precomputed
    first = dict(tr.timing)
    tr.run(steps)
    tm, stats = tr.timing, tr.data_stats()
    d_step = tm["step_s"] - first["step_s"]
    d_wait = tm["wait_s"] - first["wait_s"]
    rss_train = common.peak_rss_mb()
    out = dict(
        molecule=molecule,
        basis=basis,
        model=model,
        grid_level=grid_level,
        precision=precision,
        steps=steps,
        reuse=reuse,
        batch_size=batch_size,
        sampler=sampler,
        n_params=tr.n_params,
        init_s=t_init.seconds,
        compile_s=first["compile_s"],
        first_wait_s=first["wait_s"],
        steps_per_s=steps / d_step,
        conformer_steps_per_s=batch_size * steps / d_step,
        step_s=d_step / steps,
        wait_share=d_wait / d_step,
        compute_step_s=(d_step - d_wait) / steps,
        data_stats=stats,
        precompute_s=stats["make_seconds"] / max(stats["items_made"], 1),
        conformers_per_s=stats["items_made"] / max(stats["make_seconds"], 1e-9),
        peak_rss_train_mb=rss_train,
        backend=jax.default_backend(),
    )
    # The prefetch queue (queue_size conformers) fills while the first step compiles, so a
    # short timed window under-reports waiting: in steady state one worker feeds at most
    # conformers_per_s x reuse steps/s.
    # make_batch builds B conformers per item: conformers_per_s counts items, so x B
    out["conformers_per_s"] *= batch_size
    feed = out["conformers_per_s"] * reuse * cfg.prefetch_workers / batch_size
    out["feedable_steps_per_s"] = feed
    out["steady_steps_per_s"] = min(1.0 / out["compute_step_s"], feed)
    out["data_bound"] = feed < 1.0 / out["compute_step_s"]
    out["timed_conformers"] = batch_size * steps / reuse
    batch = tr.make_batch([tr.mol] * batch_size)  # one training batch, stacked like the Trainer's
    t = jax.tree_util.tree_map(lambda x: x[0], batch.tensors)
    out.update(n_ao=t.n_ao, n_grid=t.n_grid, eri=t.eri_kind)
    iso = common.time_jitted(tr._update, tr.state, batch, repeats=5, min_seconds=0.5)
    out["isolated_step_s"] = iso["median_s"]
    fl = common.jaxpr_flops(tr._update, tr.state, batch)
    out["flops_step"] = fl
    out["xla_flops_step"] = common.xla_flops(tr._update, tr.state, batch)
    if jax.default_backend() == "cpu":
        peak = common.matmul_rate(2000, repeats=3) * 1e9
        out["peak_source"] = "measured 2000x2000 float64 matmul"
    else:
        peak = float(peak_tflops) * 1e12
        out["peak_source"] = f"--peak-tflops {peak_tflops} ({jax.devices()[0].device_kind})"
    out["peak_flops"] = peak
    out["achieved_flops"] = fl["total"] / iso["median_s"]
    out["achieved_over_peak"] = out["achieved_flops"] / peak
    if profile:
        f = get_xc(cfg.xc)
        key = jax.random.PRNGKey(1)
        r = jax.random.normal(key, t.dm0.shape)
        r = r + r.T
        d = t.dm0

        def vg(fn):  # forward + backward of sum(fn(x) * r) w.r.t. x
            return jax.jit(jax.value_and_grad(lambda x: jnp.sum(fn(x) * r)))

        fns = dict(
            xc_kernel=vg(lambda x: xc_energy_and_potential(x, t, f)[1]),
            xc_kernel_autodiff=vg(_xc_kernel_autodiff(t, f)),
            xc=jax.jit(lambda x: xc_energy_and_potential(x, t, f)),
            coulomb=vg(lambda x: coulomb(x, t)),
            exchange=vg(lambda x: exchange(x, t)),
            eigh=vg(lambda x: solve_fock(x, t.orthogonalizer, t.n_occ)[2]),
        )
        prof = {
            k: common.time_jitted(fn, d if k != "eigh" else t.hcore, repeats=5, min_seconds=0.3)["median_s"]
            for k, fn in fns.items()
        }
        rw = jax.random.normal(key, (1,) + t.dm0.shape)
        apply_fn = cfg.network()[1]
        net = jax.jit(jax.value_and_grad(lambda p: jnp.sum(predict_correction(apply_fn, p, batch) * rw)))
        prof["network"] = common.time_jitted(net, tr.params, repeats=5, min_seconds=0.3)["median_s"]
        est = {k: prof[k] * STEP_COUNT[k] for k in PARTS}
        before = dict(est, xc_kernel=prof["xc_kernel_autodiff"] * STEP_COUNT["xc_kernel"])
        out["xc_kernel_share"] = est["xc_kernel"] / sum(est.values())
        out["xc_kernel_share_autodiff"] = before["xc_kernel"] / sum(before.values())
        out["profile_s"] = prof
        out["profile_step_estimate_s"] = est
        out["profile_dominant"] = max(est, key=est.get)
        out["profile_accounted"] = sum(est.values()) / iso["median_s"]
    tr.close()
    return out


# ----------------------------------------------------------------------------- driver
def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--molecules", help="comma-separated built-in molecules (overrides the mode)")
    p.add_argument("--bases", help="comma-separated basis sets")
    p.add_argument("--models", help="comma-separated presets (nano, tiny, small, ...)")
    p.add_argument("--grid-level", type=int, help="PySCF grid level (quick 1, full 3)")
    p.add_argument(
        "--settings",
        help="comma-separated LEVEL:PRECISION training grids, e.g. 3:float64,1:float32,0:float32 "
        "(overrides --grid-level)",
    )
    p.add_argument("--steps", type=int, help="timed steps per config after compile (quick 12, full 64)")
    p.add_argument("--reuse", type=int, default=16, help="optimiser steps per conformer")
    p.add_argument("--batch-sizes", default="1", help="comma-separated conformers per step, e.g. 1,4,8")
    p.add_argument("--sampler", default="wiggle", help="conformer sampler (wiggle, normal_modes, md)")
    p.add_argument("--eri", default="auto", choices=["auto", "dense", "df"])
    p.add_argument("--no-profile", action="store_true", help="skip the per-part profile")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=67.0,
        help="accelerator float64 peak in TFLOP/s (H100 SXM: 67 tensor core, 34 vector)",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per config")
    args = p.parse_args(argv)
    sel = dict(FULL if args.full else QUICK)
    for k in ("molecules", "bases", "models"):
        if getattr(args, k):
            sel[k] = getattr(args, k).split(",")
    grid_level = args.grid_level if args.grid_level is not None else sel["grid_level"]
    steps = args.steps or sel["steps"]
    json_path, png_path = common.out_paths(args, NAME)

    settings = [(grid_level, "float64")]
    if args.settings:
        settings = [(int(x.split(":")[0]), x.split(":")[1]) for x in args.settings.split(",")]
    rows = []
    batch_sizes = [int(b) for b in str(args.batch_sizes).split(",")]
    for model, basis, name, (grid_level, precision), bs in (
        (m, b, n, s, k)
        for m in sel["models"]
        for b in sel["bases"]
        for n in sel["molecules"]
        for s in settings
        for k in batch_sizes
    ):
        print(
            f"-- {name}/{basis}/{model} (grid level {grid_level} {precision}, batch {bs}, {steps} steps) ...",
            flush=True,
        )
        r = common.run_isolated(
            __file__,
            "train_worker",
            timeout=args.timeout,
            molecule=name,
            basis=basis,
            model=model,
            grid_level=grid_level,
            steps=steps,
            reuse=args.reuse,
            sampler=args.sampler,
            eri=args.eri,
            profile=not args.no_profile,
            peak_tflops=args.peak_tflops,
            precision=precision,
            batch_size=bs,
        )
        if "error" in r:
            print(f"   FAILED: {r['error']}", flush=True)
            r.update(molecule=name, basis=basis, model=model)
        rows.append(r)

    ok = [r for r in rows if "error" not in r]
    fits = {}
    for model in sel["models"]:
        sub = [r for r in ok if r["model"] == model and r.get("batch_size", 1) == batch_sizes[0]]
        fits[model] = common.fit_power_law([r["n_ao"] for r in sub], [r["isolated_step_s"] for r in sub])
    flat = []
    for r in ok:
        row = dict(
            case=f"{r['molecule']}/{r['basis']}/{r['model']}/L{r['grid_level']}/{r.get('precision', 'float64')}"
            f"/B{r.get('batch_size', 1)}",
            n_ao=r["n_ao"],
            sps=r["steps_per_s"],
            csps=r.get("conformer_steps_per_s", r["steps_per_s"]),
            iso_ms=1e3 * r["isolated_step_s"],
            comp_s=r["compile_s"],
            wait=100 * r["wait_share"],
            pre_s=r["precompute_s"],
            cps=r["conformers_per_s"],
            feed=r["feedable_steps_per_s"],
            steady=r["steady_steps_per_s"],
            bound="data" if r["data_bound"] else "compute",
            rss=r["peak_rss_train_mb"],
            gfl=r["flops_step"]["total"] / 1e9,
            xla=r["xla_flops_step"] / 1e9,
            ach=r["achieved_flops"] / 1e9,
            pk=100 * r["achieved_over_peak"],
        )
        if "profile_s" in r:
            row.update({k: 1e3 * r["profile_s"][k] for k in PARTS})
            row.update(
                xc_kernel_autodiff=1e3 * r["profile_s"]["xc_kernel_autodiff"],
                share=100 * r["xc_kernel_share"],
                share0=100 * r["xc_kernel_share_autodiff"],
            )
            row.update(dom=r["profile_dominant"], acc=100 * r["profile_accounted"])
        flat.append(row)
    print()
    print(
        common.table(
            flat,
            [
                ("case", "case", "{}"),
                ("AOs", "n_ao", "{}"),
                ("steps/s", "sps", "{:.2f}"),
                ("conformer-steps/s", "csps", "{:.2f}"),
                ("isolated ms/step", "iso_ms", "{:.1f}"),
                ("compile s", "comp_s", "{:.1f}"),
                ("wait %", "wait", "{:.1f}"),
                ("precomp s/conf", "pre_s", "{:.2f}"),
                ("conf/s", "cps", "{:.2f}"),
                ("feedable steps/s", "feed", "{:.1f}"),
                ("steady steps/s", "steady", "{:.2f}"),
                ("bound", "bound", "{}"),
                ("peak RSS MB", "rss", "{:.0f}"),
                ("GFLOP/step", "gfl", "{:.2f}"),
                ("XLA GFLOP", "xla", "{:.2f}"),
                ("GFLOP/s", "ach", "{:.1f}"),
                ("% peak", "pk", "{:.1f}"),
            ],
        )
    )
    if any("xc" in r for r in flat):
        print(
            "\nprofile: each part alone under jit, ms, forward+backward except 'XC fwd' "
            "(step ~ 2 XC kernel + XC fwd + 3 (J + K + eigh) + network)"
        )
        print(
            common.table(
                [r for r in flat if "xc" in r],
                [
                    ("case", "case", "{}"),
                    ("XC kernel (autodiff, before)", "xc_kernel_autodiff", "{:.2f}"),
                    ("XC kernel (explicit VJP)", "xc_kernel", "{:.2f}"),
                    ("kernel % of step before", "share0", "{:.0f}"),
                    ("kernel % of step now", "share", "{:.0f}"),
                    ("XC fwd", "xc", "{:.2f}"),
                    ("J", "coulomb", "{:.2f}"),
                    ("K", "exchange", "{:.2f}"),
                    ("eigh", "eigh", "{:.2f}"),
                    ("network", "network", "{:.2f}"),
                    ("accounted % of step", "acc", "{:.0f}"),
                    ("dominant", "dom", "{}"),
                ],
            )
        )
    for model, (k, a) in fits.items():
        print(f"fitted time per step ~ N_AO^{k:.2f} for {model}")
    print(
        "wait % is measured over the timed window (the prefetch queue fills during compile); "
        "steady steps/s = min(compute rate, precompute rate x reuse) says which side bounds."
    )
    if ok:
        print(f"peak for % column: {ok[0]['peak_source']} = {ok[0]['peak_flops'] / 1e9:.1f} GFLOP/s")
    info = common.machine_info()
    print("machine:", common.machine_line(info))
    common.write_json(
        json_path,
        dict(
            benchmark=NAME,
            mode="full" if args.full else "quick",
            settings=dict(vars(args), grid_level=grid_level, steps=steps),
            machine=info,
            rows=rows,
            table=flat,
            fits={m: dict(exponent=k, prefactor=a) for m, (k, a) in fits.items()},
        ),
    )
    _plot(ok, fits, png_path)
    print(f"wrote {json_path} and {png_path}")
    return rows


def _plot(rows, fits, path):
    import numpy as np

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    ax = axes[0]
    for model in sorted({r["model"] for r in rows}):
        sub = sorted([r for r in rows if r["model"] == model], key=lambda r: r["n_ao"])
        x = np.array([r["n_ao"] for r in sub])
        y = np.array([r["isolated_step_s"] for r in sub])
        pts = ax.loglog(x, y, "o", label=model)[0]
        for r in sub:
            ax.annotate(f"{r['molecule']}/{r['basis']}", (r["n_ao"], r["isolated_step_s"]), fontsize=6)
        k, a = fits.get(model, (np.nan, np.nan))
        if np.isfinite(k):
            xs = np.geomspace(x.min(), x.max(), 20)
            ax.loglog(xs, a * xs**k, "-", color=pts.get_color(), label=f"{model}: ~ N^{k:.2f}")
    ax.set_xlabel("number of AOs N")
    ax.set_ylabel("time per optimiser step (s)")
    ax.set_title("training step (isolated, after compile)")
    if rows:
        ax.legend(fontsize=8)
    ax = axes[1]
    prof = [r for r in rows if "profile_s" in r]
    if prof:
        labels = [f"{r['molecule']}/{r['basis']}/{r['model']}" for r in prof]
        left = np.zeros(len(prof))
        for part in PARTS:
            v = np.array([1e3 * r["profile_step_estimate_s"][part] for r in prof])
            ax.barh(labels, v, left=left, label=f"{part} x{STEP_COUNT[part]}")
            left += v
        ax.plot(
            [1e3 * r["isolated_step_s"] for r in prof], labels, "k|", markersize=14, label="measured step"
        )
        ax.set_xlabel("ms per step (parts timed alone, fwd+bwd, x count per step)")
        ax.set_title("profile of one step")
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=7)
    common.save_figure(fig, path)


if __name__ == "__main__":
    main()
