"""Physics and the PySCF bridge: pure JAX functions on arrays, Bohr and Hartree inside.

    molecule   `Molecule` (Angstrom at the boundary), xyz I/O, built-in geometries
    frames     principal-axes frame, AO rotations between frames
    dihedral   dihedral angles: measure, set (rotating one side of the bond), named torsions
    tensors    PySCF precompute into a `DFTTensors` pytree (integrals, grid, AO values)
    xc         LDA/GGA/hybrid functionals, equal to libxc through PySCF
    kohn_sham  E[D] and its terms; the Fock matrix F = dE/dD
    linalg     Cholesky-orthogonalised eigen-solve with degeneracy-guarded gradients
    scf        the teaching SCF loop and the jitted fixed-iteration driver
    sandwich   the QPT sandwich: H_init and the refining iterations (arXiv 2402.04030, Sec. 3)
    reference  the one PySCF RKS factory, cached reference labels, side-by-side comparisons

This layer never imports `qpt_nb.learn`, haiku or optax (tested).
"""
