"""Physics and the PySCF bridge: pure JAX functions on arrays, Bohr and Hartree inside.

    molecule   `Molecule` (Angstrom at the boundary), xyz I/O, built-in geometries
    frames     principal-axes frame, AO rotations between frames
    dihedral   dihedral angles: measure, set (rotating one side of the bond), named torsions
    sizes      the size rules: ERI kind, grid level, precision, grid block size
    memory     the memory a precompute needs, predicted before it starts; refusal if too large
    tensors    PySCF precompute into a `DFTTensors` pytree (integrals, grid, AO values)
    xc         LDA/GGA/hybrid functionals, equal to libxc through PySCF
    kohn_sham  E[D] and its terms; the Fock matrix F = dE/dD
    linalg     Cholesky-orthogonalised eigen-solve with degeneracy-guarded gradients
    diis       the one CDIIS step (ring buffer + extrapolation) of every SCF loop
    scf_common SCFResult, the SCF argument checks and the not-converged warning
    scf_device the SCF loop as one compiled lax.while_loop (what qpt_nb.scf runs by default)
    scf        the teaching SCF loop, the jitted fixed-iteration driver and `scf`
    sandwich   the QPT sandwich: H_init and the refining iterations (arXiv 2402.04030, Sec. 3)
    reference  the one PySCF RKS factory, cached reference labels, side-by-side comparisons

This layer never imports `qpt_nb.learn`, haiku or optax, and no two of its modules import
each other (tests/test_layering.py).
"""
