#!/usr/bin/env bash
# The headline rerun (bench/labels_vs_dft_loss.py --full): every pipeline one CPU core-hour,
# single-threaded, two side by side on the 2-core machine, CPU time charged; two seeds each.
#
#   bash bench/headline_runs.sh                 # every run whose JSON is not complete yet
#   bash bench/headline_runs.sh Q-s0 Q-s1       # just these
#   bash bench/headline_runs.sh --list          # the runs and their arguments
#
# Results: bench/results/labels_vs_dft_loss_<run>.json (rewritten after every evaluation, so an
# interrupted run keeps its curve; a complete one is skipped; an interrupted one resumes from its
# checkpoint in $QPT_NB_RUNS), logs appended to $QPT_NB_LOGS (default /tmp/qpt_headline_logs). The held-out test set (100 MD conformers, PySCF labels, tensors in
# $QPT_NB_TEST_CACHE, about 24 GB) is made first if missing. Runs are listed in pairs: the two
# seeds of one setting run together, and an L with a smaller labelling budget follows the L
# that made its labels (the label cache charges a reused label the CPU seconds it cost;
# labels cached before 2026-12-03 kept only wall seconds and are redone).
# Combine afterwards, e.g.:
#   python bench/labels_vs_dft_loss.py --full --tag headline --combine \
#     Q-s0=bench/results/labels_vs_dft_loss_Q-s0.json Q-s1=bench/results/labels_vs_dft_loss_Q-s1.json ...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
TEST=${QPT_NB_TEST_CACHE:-/tmp/qpt_test}
LOGS=${QPT_NB_LOGS:-/tmp/qpt_headline_logs}
# each run trains in $RUNS/<run>/<pipeline>, checkpointed: rerunning the script resumes an
# interrupted run where it stopped (bench/labels_vs_dft_loss.py --run-dir); keep RUNS on a disk
# that outlives the session for the multi-hour runs
RUNS=${QPT_NB_RUNS:-/tmp/qpt_headline_runs}
export OMP_NUM_THREADS=1 QPT_NB_LABEL_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
COMMON="--full --clock cpu --label-threads 1 --monitor-gb 0 --test-cache $TEST --eval-at 5 10 20 30 45"
# the training recipe (qpt_nb.learn.recipe.RECIPE) with the cosine fitted to about one CPU-hour
# of its steps (4.8 steps per CPU-second measured in the 2026-12-02 run)
# (the 2026-12-02 runs, before the data schedule: each conformer's 16 steps in a row)
RECIPE="--set train_grid_level=0 precision=float32 lr=1e-3 weight_decay=0 decay_steps=19000 data_schedule=consecutive"
# L's cosine: the first L runs (2026-12-02) kept the default 200k steps, which outlast the
# 125-145k steps an hour leaves after labelling, so their learning rate never came down
# (--l-schedule fixed); the *-fit runs let the bench fit it to the charged budget once labelling
# and the first epoch are done (--l-schedule fit, qpt_nb.learn.recipe.BudgetFit) and reuse the
# labels of the run of the same seed and engine.
FIXED="--l-schedule fixed"
# Q on half the budget, its cosine fitted to the 30 minutes (the 30-minute target)
RECIPE30="--budget-min 30 --eval-at 5 10 20 --q-schedule fit --set train_grid_level=0 precision=float32 lr=1e-3 weight_decay=0 data_schedule=consecutive"
# the converging-training recipe (2026-12-06, qpt_nb.learn.schedule): the research code's
# sliding window of 16 batches, the cosine fitted to the charged budget; 3 seeds at 30 minutes
WINDOW="--q-schedule fit --set train_grid_level=0 precision=float32 lr=1e-3 weight_decay=0 data_schedule=window"
WINDOW30="--budget-min 30 --eval-at 5 10 20 $WINDOW"
# budget scaling (issue 29): the recipe and label-then-train (qpt_nb labels, cosine fitted) at
# 15 minutes, the labelling share 50 % and 75 %
B15="--budget-min 15 --eval-at 2 5 10"
# ... and at 4 hours (one seed each to start with; resumable across sessions, see RUNS); they run
# beside the def2-SVP runs, so they evaluate 2 conformers at a time (8 at a time took 6 GB: beside
# a def2-SVP evaluation of the monitor before 2026-12-06 17:30, 14 GB, the kernel killed the
# def2-SVP run); it does not change what is trained or measured
B240="--budget-min 240 --eval-at 15 30 60 120 180 --monitor-chunk 2"
# def2-SVP, the paper's basis: 2 charged hours, trained with density fitting (eri='auto'), scored
# against PySCF labels with exact integrals (--test-eri dense); those test tensors are about 3 GB
# per conformer, so one per monitor call, none kept on disk, no evaluation of the untrained net;
# one such evaluation at a time on the machine; run the def2-SVP runs one at a time on a 24 GB
# machine, each beside a STO-3G run (a def2-SVP process peaked at 10-14 GB in its evaluation
# until 2026-12-06 17:30, at 8.4 GB since: training 3.7-3.8 GB)
SVP="--basis def2-svp --budget-min 120 --eval-at 30 60 90 --test-eri dense --monitor-chunk 1 --skip-start-eval --test-cache= --eval-turns"
ORDER=(Q-s0 Q-s1 L-pyscf-s0 L-pyscf-s1 L-qpt-s0 L-qpt-s1 L-qpt25-s0 L-qpt25-s1
  L-qpt-fit-s0 L-qpt-fit-s1 L-pyscf-fit-s0 L-pyscf-fit-s1 L-qpt25-fit-s0 L-qpt25-fit-s1 Q30-s0 Q30-s1 Qw-s0 Qw-s1 Q30w-s0 Q30w-s1 Q30w-s2
  Q15w-s0 Q15w-s1 L15-qpt-s0 L15-qpt-s1 L15-qpt75-s0 L15-qpt75-s1
  Qsvp-s0 Lsvp-qpt-s0 Qsvp-s1 Lsvp-qpt-s1 Q240w-s0 L240-qpt-s0 Q15w-amd-s0 L15-qpt-amd-s0)
declare -A ARGS=(
  [Q-s0]="--pipelines Q --seed 0 $RECIPE"
  [Q-s1]="--pipelines Q --seed 1 $RECIPE"
  [Q30-s0]="--pipelines Q --seed 0 $RECIPE30"
  [Q30-s1]="--pipelines Q --seed 1 $RECIPE30"
  [Qw-s0]="--pipelines Q --seed 0 $WINDOW"
  [Qw-s1]="--pipelines Q --seed 1 $WINDOW"
  [Q30w-s0]="--pipelines Q --seed 0 $WINDOW30"
  [Q30w-s1]="--pipelines Q --seed 1 $WINDOW30"
  [Q30w-s2]="--pipelines Q --seed 2 $WINDOW30"
  [Q15w-s0]="--pipelines Q --seed 0 $B15 $WINDOW"
  [Q15w-s1]="--pipelines Q --seed 1 $B15 $WINDOW"
  [L15-qpt-s0]="--pipelines L --seed 0 --label-engine qpt_nb $B15"
  [L15-qpt-s1]="--pipelines L --seed 1 --label-engine qpt_nb $B15"
  [L15-qpt75-s0]="--pipelines L --seed 0 --label-engine qpt_nb --label-fraction 0.75 $B15"
  [L15-qpt75-s1]="--pipelines L --seed 1 --label-engine qpt_nb --label-fraction 0.75 $B15"
  # the 15-minute pair again on another machine (AMD EPYC, 2026-12-07; budget_scaling's REPLICAS)
  [Q15w-amd-s0]="--pipelines Q --seed 0 $B15 $WINDOW"
  [L15-qpt-amd-s0]="--pipelines L --seed 0 --label-engine qpt_nb $B15"
  [Q240w-s0]="--pipelines Q --seed 0 $B240 $WINDOW"
  [L240-qpt-s0]="--pipelines L --seed 0 --label-engine qpt_nb $B240"
  [Qsvp-s0]="--pipelines Q --seed 0 $SVP $WINDOW"
  [Qsvp-s1]="--pipelines Q --seed 1 $SVP $WINDOW"
  [Lsvp-qpt-s0]="--pipelines L --seed 0 --label-engine qpt_nb $SVP"
  [Lsvp-qpt-s1]="--pipelines L --seed 1 --label-engine qpt_nb $SVP"
  [L-pyscf-s0]="--pipelines L --seed 0 $FIXED"
  [L-pyscf-s1]="--pipelines L --seed 1 $FIXED"
  [L-qpt-s0]="--pipelines L --seed 0 --label-engine qpt_nb $FIXED"
  [L-qpt-s1]="--pipelines L --seed 1 --label-engine qpt_nb $FIXED"
  [L-qpt25-s0]="--pipelines L --seed 0 --label-engine qpt_nb --label-fraction 0.25 $FIXED"
  [L-qpt25-s1]="--pipelines L --seed 1 --label-engine qpt_nb --label-fraction 0.25 $FIXED"
  [L-pyscf-fit-s0]="--pipelines L --seed 0"
  [L-pyscf-fit-s1]="--pipelines L --seed 1"
  [L-qpt-fit-s0]="--pipelines L --seed 0 --label-engine qpt_nb"
  [L-qpt-fit-s1]="--pipelines L --seed 1 --label-engine qpt_nb"
  [L-qpt25-fit-s0]="--pipelines L --seed 0 --label-engine qpt_nb --label-fraction 0.25"
  [L-qpt25-fit-s1]="--pipelines L --seed 1 --label-engine qpt_nb --label-fraction 0.25"
)
if [[ ${1:-} == --list ]]; then
  for r in "${ORDER[@]}"; do echo "$r: ${ARGS[$r]}"; done
  exit 0
fi
wanted=("${@:-${ORDER[@]}}")
for r in "${wanted[@]}"; do
  [[ -n ${ARGS[$r]:-} ]] || { echo "unknown run $r (bash $0 --list)" >&2; exit 2; }
done
mkdir -p "$LOGS"
if [[ ! -d $TEST ]] || [[ -z $(ls -A "$TEST" 2>/dev/null) ]]; then
  echo "making the test set (labels and tensors in $TEST) ..."
  $PY bench/labels_vs_dft_loss.py --full --prelabel-only --test-cache "$TEST" > "$LOGS/prelabel.log" 2>&1
fi
todo=()
for r in "${wanted[@]}"; do
  json=bench/results/labels_vs_dft_loss_$r.json
  if [[ -f $json ]] && $PY -c "import json,sys; sys.exit(0 if json.load(open('$json')).get('complete') else 1)"; then
    echo "$r: complete, skipped"
  else
    todo+=("$r")
  fi
done
run_one() {
  echo "$(date -u +%H:%M) start $1"
  # shellcheck disable=SC2086
  $PY bench/labels_vs_dft_loss.py $COMMON ${ARGS[$1]} --tag "$1" --run-dir "$RUNS/$1" >> "$LOGS/$1.log" 2>&1 \
    && echo "$(date -u +%H:%M) done $1" || echo "$(date -u +%H:%M) FAILED $1 (see $LOGS/$1.log)"
}
for ((i = 0; i < ${#todo[@]}; i += 2)); do
  run_one "${todo[i]}" &
  [[ -n ${todo[i + 1]:-} ]] && run_one "${todo[i + 1]}" &
  wait
done
