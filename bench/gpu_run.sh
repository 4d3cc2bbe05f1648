#!/usr/bin/env bash
# Benchmarks 1-3 for uracil/def2-SVP on a GPU machine, plus a training step's float64 FLOP/s.
#
# The GPU machines have no network; their python3 (3.12) holds jax[cuda], optax, numpy,
# scipy, h5py, matplotlib, tqdm, but not pyscf, dm-haiku or jmp. Fetch those wheels HERE
# once (about 53 MB, under the git-ignored .cache/) and carry that folder with the call:
#
#   .venv/bin/pip download --only-binary=:all: --python-version 3.12 --no-deps \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .cache/gpu_wheels pyscf==2.14.0 dm-haiku==0.0.17 jmp==0.0.4
#
# Device calls (each stage fits the 10-minute limit of one call; results go to $OUT when it
# is set, else bench/results; carry [".cache/gpu_wheels", ".cache/qpt_nb_labels"]):
#
#   bash bench/gpu_run.sh check      # install + versions + a smoke test                 (~2 min)
#   bash bench/gpu_run.sh scf        # 1. uracil STO-3G + def2-SVP: PySCF (16 cores) vs qpt_nb (GPU)  (~4 min)
#   bash bench/gpu_run.sh train nano # 2. uracil x {STO-3G, def2-SVP}: steps/s, wait, profile,
#   bash bench/gpu_run.sh train tiny #    FLOP/s vs FP64 peak; one preset per call        (~4 min each)
#   bash bench/gpu_run.sh labels     # 3. L vs Q vs SC on uracil/STO-3G, 2 min charged each  (~8 min)
#   bash bench/gpu_run.sh labels-svp L   # 3. on uracil/def2-SVP, one pipeline per call (L, Q, SC),
#   bash bench/gpu_run.sh labels-svp Q   #    8 min charged each; then, here, merge the three JSONs:
#   bash bench/gpu_run.sh labels-svp SC  #    python bench/labels_vs_dft_loss.py --full --tag gpu_svp --combine F1 F2 F3
#
# def2-SVP test labels cost ~45 s each on that machine (PySCF, conv_tol 1e-13) and every call
# starts bare, so label the test set HERE once and carry the cache (same sampler: the GPU
# image has no tblite, so 'wiggle'):
#   QPT_NB_CACHE=.cache/qpt_nb_labels .venv/bin/python bench/labels_vs_dft_loss.py --full \
#       --basis def2-svp --n-test 6 --sampler wiggle --prelabel-only
# Do NOT give PySCF all cores (QPT_NB_LABEL_THREADS=nproc) inside the JAX process: one
# def2-SVP label then took 227 s instead of ~45 s (likely OpenMP threads spinning against
# XLA's; not investigated further).
#
# FLOP/s: train_throughput.py counts one step's flops on its jaxpr (lax.scan bodies times
# their trip counts; XLA's cost_analysis, printed beside it, counts a loop body once) and
# divides by the isolated step time; --peak-tflops 67 is the H100/H200 FP64 tensor-core
# peak (34 without tensor cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RES=${OUT:-bench/results}
WHEELS=${WHEELS:-.cache/gpu_wheels}
PEAK=${PEAK_TFLOPS:-67}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND=Agg
[ -d .cache/qpt_nb_labels ] && export QPT_NB_CACHE=${QPT_NB_CACHE:-$PWD/.cache/qpt_nb_labels}
# one process at a time owns the GPU; do not grab 75 % of it up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p "$RES"

setup() {
  if ! $PY -c "import pyscf, haiku" 2>/dev/null; then
    if [ -d "$WHEELS" ]; then
      $PY -m pip install --quiet --no-index --find-links "$WHEELS" pyscf dm-haiku jmp
    else
      echo "missing $WHEELS (see the header of this script)" >&2; exit 2
    fi
  fi
  $PY - <<'EOF'
import jax, pyscf, haiku, optax
print("jax", jax.__version__, jax.devices(), "| pyscf", pyscf.__version__, "| haiku",
      haiku.__version__, "| optax", optax.__version__)
EOF
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
}

check() {
  $PY - <<'EOF'
import time, qpt_nb
from qpt_nb.analysis.compare import compare_with_pyscf, format_comparison
row = compare_with_pyscf(qpt_nb.Molecule.builtin("water"), "sto-3g", xc="b3lyp5", grid_level=1)
print(format_comparison(row))
tr = qpt_nb.Trainer(qpt_nb.TrainConfig(molecule="water", grid_level=1, warmup_steps=5))
t0 = time.perf_counter(); tr.run(5); tr.close()
print(f"5 training steps (compile included) in {time.perf_counter() - t0:.1f} s on",
      __import__("jax").default_backend())
EOF
}

scf() {
  $PY bench/scf_vs_pyscf.py --full --molecules uracil --bases sto-3g,def2-svp --tag gpu --out "$RES"
}

train() {   # $1 = comma-separated presets
  $PY bench/train_throughput.py --full --molecules uracil --bases sto-3g,def2-svp \
      --models "$1" --steps 32 --peak-tflops "$PEAK" --tag "gpu_${1//,/_}" --out "$RES"
}

labels() {
  $PY bench/labels_vs_dft_loss.py --full --molecule uracil --basis sto-3g --sampler wiggle \
      --n-test 10 --budget-min 2 --eval-every-min 0.25 --tag gpu --out "$RES"
}

labels_svp() {   # $1 = L | Q | SC
  $PY bench/labels_vs_dft_loss.py --full --molecule uracil --basis def2-svp --sampler wiggle \
      --n-test 6 --budget-min 8 --eval-every-min 0.5 --pipelines "$1" --tag "gpu_svp_$1" --out "$RES"
}

stage=${1:-all}
setup
case "$stage" in
  check) check ;;
  scf) scf ;;
  train) train "${2:-nano,tiny}" ;;
  labels) labels ;;
  labels-svp) labels_svp "${2:?L, Q or SC}" ;;
  all) scf; train nano,tiny; labels ;;   # ~25 min: more than one call's limit
  *) echo "usage: $0 [check|scf|train|labels|labels-svp L|Q|SC|all]" >&2; exit 2 ;;
esac
