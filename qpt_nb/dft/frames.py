"""Reference frames: the principal-axes (canonical) frame and AO rotations between frames.

The QPT pipeline moves every geometry into its principal-axes frame before building
tensors (the research code centres and aligns molecules the same way,
graphcore-research/pyscf-ipu ``pyscf_ipu/direct/train.py``), so the network's inputs
and PySCF's angular grids are fixed relative to the molecule and energies are
rotation-invariant. `rotation_to_input` maps matrices from that frame back to the
user's orientation.
"""

from __future__ import annotations

import numpy as np


def principal_axes(coords, masses):
    """Centre of mass and principal axes of a point set (pure numpy).

    Returns ``(center, R)``: ``center`` (3,) is the mass-weighted centre and the
    columns of ``R`` (3, 3) are the principal axes, in order of ascending
    principal moment; ``(coords - center) @ R`` are the coordinates in that frame.

    Sign convention (deterministic, depends only on the shape, not on the
    input orientation): for each of the first two axes ``k``
      1. the mass-weighted third moment ``sum(m * x_k**3)`` is made positive;
      2. if it is negligible (``< 1e-8 * M * L**3`` with M the total mass and L
         the largest distance from the centre, e.g. by symmetry), the first atom
         whose projection exceeds ``1e-6 * L`` gets a positive projection;
      3. if every projection is negligible the eigensolver's sign is kept.
    The third axis is ``R[:, 0] x R[:, 1]``, so ``det(R) = +1`` always and the
    transformation is a proper rotation (chirality is preserved); the sign of
    the third moment along axis 3 is therefore not controlled.

    Invariance guarantee: for an asymmetric top (three distinct moments, relative
    gaps well above 1e-8) whose first two axes are fixed by rules 1-2, a rotated
    and translated copy yields the same frame coordinates to round-off.  For
    symmetric/spherical tops (degenerate moments: NH3, CH4, benzene) and linear
    molecules the axes within a degenerate subspace are arbitrary.
    """
    x = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    m = np.asarray(masses, dtype=np.float64).reshape(-1)
    if len(m) != len(x) or len(x) == 0 or not np.all(m > 0):
        raise ValueError("principal_axes needs one positive mass per atom")
    center = (m[:, None] * x).sum(0) / m.sum()
    r = x - center
    inertia = (m * (r * r).sum(1)).sum() * np.eye(3) - np.einsum("i,ij,ik->jk", m, r, r)
    _, vecs = np.linalg.eigh(inertia)
    length = max(float(np.sqrt((r * r).sum(1)).max()), 1e-300)
    axes = [vecs[:, 0], vecs[:, 1]]
    for k in range(2):
        proj = r @ axes[k]
        third = float((m * proj**3).sum())
        if abs(third) > 1e-8 * m.sum() * length**3:
            sign = np.sign(third)
        else:
            big = np.flatnonzero(np.abs(proj) > 1e-6 * length)
            sign = np.sign(proj[big[0]]) if len(big) else 1.0
        axes[k] = axes[k] * sign
    rot = np.column_stack([axes[0], axes[1], np.cross(axes[0], axes[1])])
    return center, rot


def rotation_to_input(mol, basis: str) -> np.ndarray:
    """AO transformation U (N, N) from the canonical frame of `mol` to its input frame.

    With x_can = (x - c) R (`principal_axes`), a canonical-frame density or MO
    coefficient matrix maps to the input frame as D_in = U D_can U^T, C_in = U C_can.
    U is block diagonal (per shell, the real-spherical-harmonic rotation of its l,
    PySCF's `ao_rotation_matrix`), orthogonal, and exact: the density on any point
    of space is unchanged (tested pointwise).
    """
    from pyscf.gto.mole import ao_rotation_matrix

    _, rot = principal_axes(mol.coords_angstrom, mol.masses)
    return np.asarray(ao_rotation_matrix(mol.canonical().to_pyscf(basis), rot)).T
