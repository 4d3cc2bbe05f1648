"""Command line: `qpt-nb demo | scf | train | evaluate | predict`.

Errors in the user's input end with a one-line message and exit code 2, never a
traceback from inside JAX or PySCF.
"""

from __future__ import annotations

import argparse
import sys

from qpt_nb.cli.demo import add_demo_args, run_demo
from qpt_nb.cli.predict import add_predict_command
from qpt_nb.cli.train import add_train_commands


def _molecule(args):
    from qpt_nb.dft.molecule import Molecule

    if getattr(args, "xyz", None):
        return Molecule.from_xyz(args.xyz, charge=args.charge, spin=args.spin)
    mol = Molecule.builtin(args.molecule)
    if args.charge or args.spin:
        mol = Molecule.from_arrays(
            mol.symbols, mol.coords_angstrom, charge=args.charge, spin=args.spin, name=mol.name
        )
    return mol


def add_molecule_args(p, default="uracil"):
    p.add_argument("--molecule", default=default, help="built-in molecule name (see `qpt-nb list`)")
    p.add_argument("--xyz", help="xyz file (Angstrom) instead of a built-in molecule")
    p.add_argument("--charge", type=int, default=0)
    p.add_argument("--spin", type=int, default=0)
    p.add_argument("--basis", default="sto-3g")
    p.add_argument("--xc", default="b3lyp5")
    p.add_argument("--grid-level", type=int, default=3)


def cmd_scf(args) -> int:
    """JAX SCF next to PySCF: energies, difference and timings."""
    from qpt_nb.analysis.compare import compare_with_pyscf, format_comparison
    from qpt_nb.dft.memory import check_memory, estimate_memory, format_memory

    mol = _molecule(args)
    print(
        "memory: "
        + format_memory(
            check_memory(estimate_memory(mol, args.basis, grid_level=args.grid_level, xc=args.xc))
        )
    )
    row = compare_with_pyscf(mol, args.basis, xc=args.xc, grid_level=args.grid_level, pyscf=not args.no_pyscf)
    print(format_comparison(row))
    return 0


def cmd_list(args) -> int:
    from qpt_nb.dft.molecule import Molecule
    from qpt_nb.dft.xc import SUPPORTED

    print("molecules:   " + ", ".join(Molecule.builtins()))
    print("functionals: " + ", ".join(SUPPORTED))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qpt-nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("scf", help="run qpt_nb's JAX SCF (and PySCF beside it)")
    add_molecule_args(p)
    p.add_argument("--no-pyscf", action="store_true", help="skip the PySCF reference")
    p.set_defaults(func=cmd_scf)
    p = sub.add_parser("list", help="built-in molecules and functionals")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("demo", help="the main job: label-free training on uracil, then metrics against PySCF")
    add_molecule_args(p)
    p.add_argument("--no-pyscf", action="store_true", help="skip the PySCF evaluation")
    add_demo_args(p)
    p.set_defaults(func=run_demo)
    add_train_commands(sub)
    add_predict_command(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        # user errors (bad values, files missing / unwritable / not text, a job too large for
        # memory, a run directory in use, a diverged run): one line, exit code 2
        print(f"qpt-nb {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at {exc.start})"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
