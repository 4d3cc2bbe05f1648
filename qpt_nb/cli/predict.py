"""`qpt-nb predict`: a trained model on every frame of a geometry file, one CSV row per frame.

    qpt-nb predict --run runs/uracil --xyz md.xyz --out predictions.csv
    qpt-nb predict --pretrained water --xyz traj.xyz --save-hamiltonians h.npz
    qpt-nb predict --run runs/uracil          # the run's own test_set.xyz
    qpt-nb predict --pretrained uracil --xyz md.traj --out p.csv p.extxyz --forces

--xyz reads every format ``ase.io.read`` reads (extxyz with extra columns and info, .traj,
.pdb, .sdf; charge and spin from each frame's info when present). Each --out file is
written by its suffix: .csv the table below; .extxyz (or .xyz) one extended-xyz frame per
geometry with the energy (eV) as ASE's single-point result and homo_ev, lumo_ev, gap_ev in
its info, and with --forces the model's approximate forces (eV/Angstrom:
`qpt_nb.analysis.predict.Prediction.gradient`, PySCF's gradient formula on the predicted
orbitals, which are not self-consistent); any other suffix ASE writes.

CSV columns (`COLUMNS`): index (frame), energy_hartree and energy_ev (E[D_n]), homo_ev,
lumo_ev, gap_ev, seconds (precompute + network + sandwich of that frame, compilation not
included). Throughput is printed in frames/s. Errors (missing file, frames of another
molecule, a run without a checkpoint) raise ValueError / OSError with one line;
`qpt_nb.cli.main` prints it and exits with 2.
"""

from __future__ import annotations

import io
from pathlib import Path

from qpt_nb import settings
from qpt_nb.units import ANGSTROM_PER_BOHR, EV_PER_HARTREE

COLUMNS = ("index", "energy_hartree", "energy_ev", "homo_ev", "lumo_ev", "gap_ev", "seconds")


def add_predict_command(sub) -> None:
    """Adds `predict` to an argparse sub-parsers object."""
    p = sub.add_parser("predict", help="a trained model's energies and orbitals on the frames of an xyz file")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="run directory (`qpt-nb train --out`)")
    src.add_argument("--pretrained", metavar="NAME", help="a shipped model (qpt_nb.pretrained.list())")
    p.add_argument("--xyz", help="multi-frame xyz file, Angstrom (default with --run: its test_set.xyz)")
    p.add_argument(
        "--out",
        nargs="+",
        default=["predictions.csv"],
        help="output files by suffix: .csv (default predictions.csv), .extxyz / .xyz (ASE extended xyz)",
    )
    p.add_argument(
        "--forces",
        action="store_true",
        help="also the model's approximate forces (eV/Angstrom) into the extxyz output",
    )
    p.add_argument(
        "--save-hamiltonians",
        metavar="NPZ",
        help="also save fock, density, mo_energy, mo_coeff, overlap (Hartree) of every frame",
    )
    p.add_argument(
        "--frame",
        choices=("input", "canonical"),
        default="input",
        help="AO frame of the saved matrices: the xyz file's orientation (default) or each "
        "frame's principal axes (the model's own)",
    )
    p.add_argument("--batch-size", type=int, help="frames per compiled call (default 8)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_predict)


def _model_and_xyz(args):
    """(model argument for `predict`, xyz path), with one-line errors for what is missing."""
    if args.run is not None:
        run = Path(args.run)
        if not run.is_dir():
            raise FileNotFoundError(f"No run directory {run}.")
        model, xyz = run, args.xyz or run / "test_set.xyz"
        if args.xyz is None and not Path(xyz).is_file():
            raise FileNotFoundError(f"{run} holds no test_set.xyz (`qpt-nb evaluate` writes it): pass --xyz.")
    else:
        from qpt_nb import pretrained

        model, xyz = pretrained.load(args.pretrained), args.xyz
        if xyz is None:
            raise ValueError("--pretrained needs --xyz (the frames to predict).")
    if not Path(xyz).is_file():
        raise FileNotFoundError(f"No xyz file {xyz}.")
    return model, Path(xyz)


def csv_rows(preds) -> list:
    """One dict per prediction with the `COLUMNS` keys (eV from `qpt_nb.units`)."""
    return [
        dict(
            index=p.index,
            energy_hartree=p.energy,
            energy_ev=p.energy * EV_PER_HARTREE,
            homo_ev=p.homo * EV_PER_HARTREE,
            lumo_ev=p.lumo * EV_PER_HARTREE,
            gap_ev=p.gap * EV_PER_HARTREE,
            seconds=sum(p.seconds.values()),
        )
        for p in preds
    ]


def write_csv(path, preds) -> None:
    from qpt_nb.fileio import atomic_write_text

    lines = [",".join(COLUMNS)]
    for r in csv_rows(preds):
        lines.append(",".join(str(r[c]) if c == "index" else repr(float(r[c])) for c in COLUMNS))
    atomic_write_text(path, "\n".join(lines) + "\n")


def forces_ev_per_angstrom(pred):
    """-dE/dR (A, 3) in eV/Angstrom of one `Prediction` (approximate, `Prediction.gradient`)."""
    return -pred.gradient() * (EV_PER_HARTREE / ANGSTROM_PER_BOHR)


def write_frames(path, preds, forces=None) -> None:
    """One ASE frame per prediction (`qpt_nb.dft.atoms_io.write_frames`): the energy in eV,
    homo_ev, lumo_ev, gap_ev and qpt_energy_hartree in the info, forces when given."""
    from qpt_nb.dft import atoms_io

    rows = csv_rows(preds)
    atoms_io.write_frames(
        path,
        [p.molecule for p in preds],
        energies_ev=[r["energy_ev"] for r in rows],
        forces_ev_per_angstrom=forces,
        info=[
            dict(
                index=r["index"],
                homo_ev=r["homo_ev"],
                lumo_ev=r["lumo_ev"],
                gap_ev=r["gap_ev"],
                energy_hartree=r["energy_hartree"],
            )
            for r in rows
        ],
    )


def save_hamiltonians(path, preds, frame: str = "input") -> None:
    """An .npz of (M, ...) arrays: energy (M,) Hartree, fock, density, mo_coeff, overlap
    (M, N, N), mo_energy (M, N) Hartree, n_occ, spin (2S), coords_angstrom (M, A, 3) as given,
    symbols, and 'frame' ('input' or 'canonical'). For an open shell fock, density, mo_coeff
    are (M, 2, N, N) and mo_energy (M, 2, N), alpha then beta; n_occ is n_beta and
    n_alpha = n_occ + spin."""
    import numpy as np

    from qpt_nb.fileio import atomic_write_bytes

    if frame == "input":
        mats = [p.in_input_frame() for p in preds]
    else:
        mats = [
            dict(
                fock=p.fock,
                density=p.density,
                mo_coeff=p.mo_coeff,
                overlap=p.molecule.canonical().to_pyscf(p.basis).intor("int1e_ovlp"),
            )
            for p in preds
        ]
    arrays = {k: np.stack([m[k] for m in mats]) for k in ("fock", "density", "mo_coeff", "overlap")}
    buf = io.BytesIO()
    np.savez(
        buf,
        energy=np.asarray([p.energy for p in preds]),
        mo_energy=np.stack([p.mo_energy for p in preds]),
        n_occ=np.asarray(preds[0].n_occ),
        spin=np.asarray(preds[0].spin),
        coords_angstrom=np.stack([p.molecule.coords_angstrom for p in preds]),
        symbols=np.asarray(preds[0].molecule.symbols),
        frame=np.asarray(frame),
        **arrays,
    )
    atomic_write_bytes(path, buf.getvalue())


def cmd_predict(args) -> int:
    from qpt_nb.analysis.predict import predict

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}.")
    model, xyz = _model_and_xyz(args)
    outs = [Path(o) for o in args.out]
    for out in outs:
        if out.is_dir():
            raise ValueError(f"--out {out} is a directory; give a file name (.csv or .extxyz).")
    if args.forces and not any(o.suffix.lower() != ".csv" for o in outs):
        raise ValueError("--forces goes into an extxyz file: add one to --out (e.g. --out p.csv p.extxyz)")
    settings.enable_compile_cache()
    preds = predict(model, xyz, batch_size=args.batch_size, progress=not args.no_progress, keep_tensors=False)
    s = preds.settings
    forces = [forces_ev_per_angstrom(p) for p in preds] if args.forces else None
    for out in outs:
        if out.suffix.lower() == ".csv":
            write_csv(out, preds)
        else:
            write_frames(out, preds, forces)
    print(
        f"{len(preds)} frames of {xyz}: {s['molecule']} / {s['basis']} / {s['xc']} / grid level "
        f"{s['grid_level']} / {s['model']} (step {s['step']}) -> {', '.join(map(str, outs))}"
    )
    if args.save_hamiltonians:
        save_hamiltonians(args.save_hamiltonians, preds, args.frame)
        print(f"matrices ({args.frame} frame): {args.save_hamiltonians}")
    n, wall, comp = len(preds), preds.wall_seconds, preds.compile_seconds
    mean = {k: sum(p.seconds[k] for p in preds) / n for k in ("precompute", "network", "sandwich")}
    print(
        f"throughput: {n / wall:.2f} frames/s ({wall:.1f} s for {n} frames, {comp:.1f} s of it compiling; "
        f"{n / max(wall - comp, 1e-9):.2f} frames/s without); per frame "
        + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in mean.items())
    )
    return 0
