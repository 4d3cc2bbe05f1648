"""Shared helpers of the bench/ scripts: command line (`make_parser`), clocks (`Timer`,
`time_jitted`), `run_isolated` (a function of a bench script in a FRESH process, with its
peak RSS, so PySCF's and JAX's memory high-water marks are separable), flop counts
(`jaxpr_flops`, `xla_flops`), measured float64 matmul rates, provenance and outputs.
Run with no arguments it prints this machine's float64 matmul rates.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
MARKER = "@@BENCH_RESULT@@"


# ----------------------------------------------------------------------------- command line
def make_parser(description: str, name: str) -> argparse.ArgumentParser:
    """argparse parser with --full (the real benchmark; default: quick) and --out
    (folder for <name>.json and <name>.png; default bench/results/)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--full",
        action="store_true",
        help="the real benchmark (long; run on a quiet machine). Default: quick mode.",
    )
    p.add_argument(
        "--out",
        default=str(RESULTS),
        help=f"output folder for {name}.json / {name}.png (default: bench/results)",
    )
    p.add_argument("--tag", default="", help="suffix for the output file names (e.g. 'gpu')")
    return p


def out_paths(args, name: str):
    """(json_path, png_path) for a script `name` under args.out (folder created)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = name + (f"_{args.tag}" if getattr(args, "tag", "") else "")
    if not getattr(args, "full", False):
        stem += "_quick"
    return out / f"{stem}.json", out / f"{stem}.png"


# ----------------------------------------------------------------------------- clocks
class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        return False


def block(x):
    """Blocks on every JAX array in `x` (returns `x`)."""
    import jax

    return jax.block_until_ready(x)


def time_jitted(fn, *args, repeats: int = 5, min_seconds: float = 0.0) -> dict:
    """Calls the (jitted) `fn(*args)` once to compile, then `repeats` more times.

    Returns dict(first_s, median_s, min_s, compile_s = first - median). Runs at least
    `min_seconds` in total after the first call (more repeats for very short calls).
    """
    with Timer() as t:
        block(fn(*args))
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < repeats or time.perf_counter() < t_end:
        with Timer() as tr:
            block(fn(*args))
        times.append(tr.seconds)
        if len(times) >= 1000:
            break
    times.sort()
    med = times[len(times) // 2]
    return dict(
        first_s=t.seconds,
        median_s=med,
        min_s=times[0],
        compile_s=max(t.seconds - med, 0.0),
        repeats=len(times),
    )


def device_peak_mb() -> float:
    """Peak accelerator memory in use (MB) from JAX's memory_stats, NaN on CPU / unknown."""
    try:
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use", float("nan")) / 1e6
    except Exception:  # noqa: BLE001
        return float("nan")


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark in MB (Linux ru_maxrss is in KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


# ----------------------------------------------------------------------------- isolation
def run_isolated(
    script, func: str, *, timeout: float | None = None, env: dict | None = None, **kwargs
) -> dict:
    """Runs ``func(**kwargs)`` from the bench script file `script` in a fresh interpreter.

    The function must return a JSON-able dict. Returned: that dict plus
    'peak_rss_mb' (the child's RSS high-water mark over its whole life, imports
    included), 'baseline_rss_mb' (the high-water mark after imports, just before the
    call) and 'process_s' (the child's wall time). On failure: dict(error=...).
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--call",
        f"{Path(script).resolve()}:{func}",
        json.dumps(kwargs),
    ]
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("MPLBACKEND", "Agg")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            out = json.loads(line[len(MARKER) :])
            out["process_s"] = time.perf_counter() - t0
            return out
    tail = (proc.stderr or proc.stdout)[-3000:]
    return dict(error=f"child exited {proc.returncode}: {tail}")


def _child(spec: str, kwargs_json: str):
    path, func = spec.rsplit(":", 1)
    sys.path.insert(0, str(BENCH_DIR))
    mod_spec = importlib.util.spec_from_file_location("_bench_child", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    baseline = peak_rss_mb()
    result = getattr(mod, func)(**json.loads(kwargs_json))
    result = dict(result)
    result["peak_rss_mb"] = peak_rss_mb()
    result["baseline_rss_mb"] = baseline
    if "jax" in sys.modules:
        result["device_peak_mb"] = device_peak_mb()
    print(MARKER + json.dumps(result, default=_json_default), flush=True)


# ----------------------------------------------------------------------------- flop counts
_ELEMENTWISE = {
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "max",
    "min",
    "exp",
    "log",
    "log1p",
    "expm1",
    "pow",
    "integer_pow",
    "sqrt",
    "rsqrt",
    "cbrt",
    "tanh",
    "logistic",
    "erf",
    "abs",
    "sign",
    "select_n",
    "reduce_sum",
    "reduce_max",
    "square",
    "atan2",
    "sin",
    "cos",
}


def jaxpr_flops(fn, *args, **kwargs) -> dict:
    """Flops of one call of `fn(*args)` counted on its jaxpr (jax.make_jaxpr).

    XLA's ``compiled.cost_analysis()['flops']`` counts the body of a while loop (every
    ``lax.scan``: the XC grid blocks, the refinement iterations) ONCE, so it undercounts
    this package's functions by the trip counts. Here scan bodies are multiplied by their
    length, cond takes the costliest branch, while loops (unknown trip count) are counted
    once and reported in 'while_loops'. Returns dict(matmul = 2 x MACs of dot_general,
    linalg = eigh 9 N^3 + cholesky N^3/3 + triangular solves N^2 M + LU 2/3 N^3,
    elementwise = one per output element of arithmetic primitives, total, while_loops).
    """
    import jax

    closed = jax.make_jaxpr(fn, **kwargs)(*args)
    acc = dict(matmul=0.0, linalg=0.0, elementwise=0.0, while_loops=0)
    _count_jaxpr(closed.jaxpr, 1.0, acc)
    acc["total"] = acc["matmul"] + acc["linalg"] + acc["elementwise"]
    return acc


def _sub_jaxprs(value):
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _sub_jaxprs(v)


def _prod(xs):
    out = 1
    for x in xs:
        out *= int(x)
    return out


def _count_jaxpr(jaxpr, mult, acc):
    for eqn in jaxpr.eqns:
        name, params = eqn.primitive.name, eqn.params
        shapes = [getattr(v.aval, "shape", ()) for v in eqn.invars]
        if name == "dot_general":
            (lc, rc), (lb, _rb) = params["dimension_numbers"]
            lhs, rhs = shapes[0], shapes[1]
            batch, contract = _prod(lhs[i] for i in lb), _prod(lhs[i] for i in lc)
            lfree = _prod(lhs) // max(batch * contract, 1)
            rfree = _prod(rhs) // max(batch * _prod(rhs[i] for i in rc), 1)
            acc["matmul"] += mult * 2.0 * batch * contract * lfree * rfree
        elif name in ("eigh", "eigh_jacobi"):
            s = shapes[0]
            acc["linalg"] += mult * 9.0 * _prod(s[:-2]) * s[-1] ** 3
        elif name == "cholesky":
            s = shapes[0]
            acc["linalg"] += mult * _prod(s[:-2]) * s[-1] ** 3 / 3.0
        elif name == "lu":
            s = shapes[0]
            acc["linalg"] += mult * 2.0 / 3.0 * _prod(s[:-2]) * s[-1] ** 3
        elif name == "triangular_solve":
            a, b = shapes[0], shapes[1]
            acc["linalg"] += mult * _prod(b) * a[-1]
        elif name in _ELEMENTWISE:
            out = eqn.outvars[0].aval
            acc["elementwise"] += mult * _prod(getattr(out, "shape", ()))
        if name == "scan":
            for sub in _sub_jaxprs(params.get("jaxpr")):
                _count_jaxpr(sub, mult * int(params["length"]), acc)
        elif name == "cond":
            best = None
            for sub in _sub_jaxprs(params.get("branches", ())):
                tmp = dict(matmul=0.0, linalg=0.0, elementwise=0.0, while_loops=0)
                _count_jaxpr(sub, mult, tmp)
                if best is None or tmp["matmul"] + tmp["linalg"] > best["matmul"] + best["linalg"]:
                    best = tmp
            for k, v in (best or {}).items():
                acc[k] += v
        else:
            if name == "while":
                acc["while_loops"] += 1
            for key, value in params.items():
                if key in ("jvp_jaxpr_fun", "jvp_jaxpr_thunk", "fwd_jaxpr_thunk", "bwd"):
                    continue
                for sub in _sub_jaxprs(value):
                    _count_jaxpr(sub, mult, acc)


def xla_flops(jitted, *args) -> float:
    """XLA's own flop estimate of the compiled `jitted(*args)` (loop bodies counted once)."""
    try:
        cost = jitted.lower(*args).compile().cost_analysis()
    except Exception:  # noqa: BLE001  (best effort: not every backend reports it)
        return float("nan")
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


# ----------------------------------------------------------------------------- machine
def matmul_rate(n: int = 2000, repeats: int = 5) -> float:
    """Measured float64 GFLOP/s of a jnp (n x n) @ (n x n) matmul (2 n^3 flops)."""
    return matmul_rate_shape(n, n, n, repeats)


def matmul_rate_shape(m: int, k: int, n: int, repeats: int = 5) -> float:
    """Measured float64 GFLOP/s of a jitted jnp (m x k) @ (k x n) matmul (2 m k n flops),
    e.g. the tall-skinny (G x N) @ (N x N) product of the XC quadrature."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (m, k), jnp.float64)
    b = jax.random.normal(kb, (k, n), jnp.float64)
    f = jax.jit(jnp.matmul)
    t = time_jitted(f, a, b, repeats=repeats, min_seconds=0.2)
    return 2.0 * m * k * n / t["median_s"] / 1e9


def machine_info() -> dict:
    """Where and when: `qpt_nb.diagnostics.machine_info` (host, CPU model and count, load,
    JAX backend and devices, versions)."""
    from qpt_nb.diagnostics import machine_info as _machine_info

    return _machine_info()


def machine_line(info: dict) -> str:
    dev = ",".join(info.get("jax_devices", [])) or "?"
    return (
        f"{info.get('cpu_model', '?')} x{info.get('cpu_count')} cores, JAX {info.get('jax')} on "
        f"{info.get('jax_backend')} ({dev}), load {info.get('load_avg_1m', float('nan')):.1f}, "
        f"{info['date']}"
    )


# ----------------------------------------------------------------------------- outputs
def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def write_json(path, data) -> Path:
    """Atomic JSON write (NaN -> null), through `qpt_nb.fileio`."""
    from qpt_nb.fileio import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(_nan_to_none(data), indent=1, default=_json_default) + "\n")
    return path


COMMAND_FILE = "command.txt"


def record_command(run_dir, argv=None) -> Path:
    """Writes the command that trains into `run_dir` (``command.txt``, one line), so that
    a model taken from the run later (`bench/train_pretrained.py --from-run`) can say how it
    was trained. A resumed run appends its command: each line is one start."""
    from qpt_nb.fileio import atomic_write_text

    path = Path(run_dir) / COMMAND_FILE
    line = " ".join(["python", Path(sys.argv[0]).as_posix()] + list(sys.argv[1:] if argv is None else argv))
    old = path.read_text() if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, old + line + "\n")
    return path


def recorded_command(run_dir) -> Optional[str]:
    """The first command `record_command` wrote for `run_dir` or the folder above it (a
    pipeline's folder inside a bench run's), or None."""
    for d in (Path(run_dir), Path(run_dir).parent):
        if (d / COMMAND_FILE).is_file():
            lines = (d / COMMAND_FILE).read_text().splitlines()
            return lines[0] if lines else None
    return None


def _nan_to_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x


def save_figure(fig, path) -> Path:
    """Saves a matplotlib figure as PNG (dpi 120) and closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def table(rows: list, columns: list) -> str:
    """Plain-text table. columns: [(header, key, format)], format like '{:.2f}'."""

    def cell(r, key, fmt):
        v = r.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "-"
        try:
            return fmt.format(v)
        except (ValueError, TypeError):
            return str(v)

    cells = [[cell(r, k, f) for _, k, f in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(columns)]
    lines = ["  ".join(h.rjust(w) for (h, _, _), w in zip(columns, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def fit_power_law(x, y):
    """(exponent, prefactor) of a least-squares fit y = a x^k in log-log space
    (`qpt_nb.analysis.scaling.fit_power_law` with x0 = 1); nan, nan where it cannot fit."""
    import numpy as np

    from qpt_nb.analysis.scaling import fit_power_law as fit

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    try:
        law = fit(x[ok], y[ok], x0=1.0)
    except ValueError:
        return float("nan"), float("nan")
    return -law.alpha, float(np.exp(law.log_a))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--call":
        _child(sys.argv[2], sys.argv[3])
    else:
        print("bench/common.py: helpers for the bench scripts. This machine's float64 matmul rate:")
        print(f"  2000x2000 @ 2000x2000: {matmul_rate(2000, 3):.1f} GFLOP/s")
        print(f"  tall-skinny 100000x100 @ 100x100: {matmul_rate_shape(100000, 100, 100, 3):.1f} GFLOP/s")
