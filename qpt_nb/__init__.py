"""qpt_nb: train neural networks with density functional theory as the loss.

Importing the package switches JAX to float64 (``jax_enable_x64``) before any
array is created: every physics function here works in float64.
Units: Angstrom at the user boundary (`Molecule`), Bohr and Hartree inside.

    >>> import qpt_nb
    >>> mol = qpt_nb.Molecule.builtin("water")
    >>> res = qpt_nb.scf(mol, basis="sto-3g", xc="b3lyp5", grid_level=3)
    >>> round(res.energy, 6)    # PySCF's dft.RKS(..., xc='b3lyp5') (the VWN5 variant) agrees to 1e-8
    -75.279984
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

# Public API. The subpackages are layers, each importing only the ones before it:
#   qpt_nb.units, qpt_nb.settings, qpt_nb.fileio   constants, environment, atomic files
#   qpt_nb.dft        physics and the PySCF bridge (no haiku, no optax)
#   qpt_nb.learn      the network (haiku), losses, conformers, training (optax)
#   qpt_nb.pretrained shipped models (qpt_nb.pretrained.list(), .load(name))
#   qpt_nb.analysis   metrics, evaluation, initial guesses, run directories, experiments, predict
#   qpt_nb.viz, qpt_nb.widgets, qpt_nb.cli
# No public name equals a module's name (`qpt_nb.dft.scf` is the module, `qpt_nb.scf` the
# function). The physics names are imported now; the learning names on first use, so
# `import qpt_nb.dft.kohn_sham` loads neither haiku nor optax.
from qpt_nb.dft.kohn_sham import energy, energy_and_fock, energy_components, fock  # noqa: E402
from qpt_nb.dft.molecule import Molecule  # noqa: E402
from qpt_nb.dft.sandwich import initial_iteration, refine, sandwich_energy  # noqa: E402
from qpt_nb.dft.scf import SCFResult, scf_fixed, scf_loop  # noqa: E402
from qpt_nb.dft.scf import scf as _scf  # noqa: E402
from qpt_nb.dft.tensors import DFTTensors, dft_tensors  # noqa: E402

_LAZY = {
    "prepare_conformer": "qpt_nb.learn.batch",
    "stack_batch": "qpt_nb.learn.batch",
    "qpt_energy": "qpt_nb.learn.losses",
    "Trainer": "qpt_nb.learn.train",
    "TrainConfig": "qpt_nb.learn.train",
    "TrainState": "qpt_nb.learn.train",
    "evaluate": "qpt_nb.analysis.evaluation",
    "make_test_set": "qpt_nb.analysis.evaluation",
    "initial_guess": "qpt_nb.analysis.guesses",
    "predict": "qpt_nb.analysis.predict",
    "model_scf": "qpt_nb.analysis.predict",
    "doctor": "qpt_nb.diagnostics",
}

__all__ = [
    "Molecule",
    "DFTTensors",
    "dft_tensors",
    "energy",
    "energy_and_fock",
    "energy_components",
    "fock",
    "scf",
    "scf_fixed",
    "scf_loop",
    "SCFResult",
    "initial_iteration",
    "refine",
    "sandwich_energy",
    *_LAZY,
]


def _is_model(guess) -> bool:
    """Whether `scf`'s guess names a trained model rather than a density or 'minao'."""
    import os
    from pathlib import Path

    if isinstance(guess, (str, os.PathLike)):
        if isinstance(guess, str) and guess.strip().lower() == "minao":
            return False
        from qpt_nb import pretrained

        return Path(guess).exists() or (isinstance(guess, str) and pretrained.is_name(guess))
    if isinstance(guess, tuple) and len(guess) == 2 and type(guess[0]).__name__ == "TrainConfig":
        return True
    return hasattr(guess, "params") and hasattr(guess, "config")  # a Trainer, a PretrainedModel


def scf(mol, basis=None, *, guess=None, **kw):
    if _is_model(guess):
        from qpt_nb.analysis.predict import seeded_scf

        return seeded_scf(guess, mol, basis=basis, **kw)
    return _scf(mol, "def2-svp" if basis is None else basis, guess=guess, **kw)


scf.__doc__ = _scf.__doc__
scf.__wrapped__ = _scf  # inspect.signature shows the physics function's arguments


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name == "pretrained":  # the shipped models: qpt_nb.pretrained.list() / .load(name)
        import importlib

        return importlib.import_module("qpt_nb.pretrained")
    raise AttributeError(f"module 'qpt_nb' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"pretrained"})
