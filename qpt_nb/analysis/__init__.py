"""Analysis of trained models against PySCF.

metrics      per-conformer errors and their summary, as the field computes them
evaluation   `evaluate` (per-conformer path), `make_monitor`, test sets
guesses      the model's density as an SCF initial guess, and its iteration savings
runs         the one reader of run directories
predict      `predict` (a trained model on new geometries, batched), `model_scf`
experiments  label-free vs label-then-train pipelines, schedules, crossings
ramachandran the phi/psi energy map (`energy_map`, `psi_scan`, `EnergyMap`): QPT, W = 0, PySCF
"""
