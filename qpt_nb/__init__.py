"""qpt_nb: train neural networks with density functional theory as the loss.

Importing the package switches JAX to float64 (``jax_enable_x64``) before any
array is created: every physics function here works in float64.
Units: Angstrom at the user boundary (`Molecule`), Bohr and Hartree inside.

    >>> import qpt_nb
    >>> mol = qpt_nb.Molecule.builtin("water")
    >>> res = qpt_nb.scf(mol, basis="sto-3g", xc="b3lyp5", grid_level=3)
    >>> round(res.energy, 6)    # PySCF: -75.312527 (B3LYP5 = VWN5 variant)
"""
import jax as _jax

_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

# Public API.  Function names shadow their submodules on purpose (qpt_nb.scf is the
# function; `from qpt_nb.scf import ...` still reaches the module).
from .molecule import Molecule  # noqa: E402
from .tensors import DFTTensors, dft_tensors  # noqa: E402
from .energy import energy, energy_and_fock, energy_components, fock  # noqa: E402
from .scf import scf, scf_fixed, scf_loop, SCFResult  # noqa: E402
from .sandwich import initial_iteration, refine, sandwich_energy  # noqa: E402
from .qpt import qpt_energy, prepare_conformer, stack_batch  # noqa: E402
from . import conformers  # noqa: E402,F401
from .evaluate import evaluate, initial_guess, make_test_set  # noqa: E402
from .doctor import doctor  # noqa: E402
from .train import Trainer, TrainConfig, TrainState  # noqa: E402
from . import reference  # noqa: E402,F401


