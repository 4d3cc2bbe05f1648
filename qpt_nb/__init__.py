"""qpt_nb: train neural networks with density functional theory as the loss.

Importing the package switches JAX to float64 (``jax_enable_x64``) before any
array is created: every physics function here works in float64.
Units: Angstrom at the user boundary, Bohr and Hartree inside.
"""
import jax as _jax

_jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
