"""Physical constants and unit conversions: the one place they are written.

Inside qpt_nb everything is in atomic units (Bohr, Hartree); Angstrom appears
only at the user boundary (`qpt_nb.dft.molecule.Molecule`, xyz files) and
reports use meV, eV and micro-Hartree, as the Hamiltonian-learning literature
does (QHNet, QH9, arXiv 2402.04030 Table 1).

Naming: every factor is ``X_PER_Y``, the number of X in one Y, so a quantity in Y
times ``X_PER_Y`` is in X (``energy_ha * MEV_PER_HARTREE`` is in meV, ``coords_bohr *
ANGSTROM_PER_BOHR`` in Angstrom).

The Bohr radius is PySCF's value (``pyscf.lib.param.BOHR``, tested equal), so
coordinates converted here agree with PySCF's bit for bit. The energy factors are
CODATA 2018.
"""

ANGSTROM_PER_BOHR = 0.52917721092  # 1 Bohr in Angstrom (PySCF's pyscf.lib.param.BOHR)
BOHR_PER_ANGSTROM = 1.0 / ANGSTROM_PER_BOHR  # 1 Angstrom in Bohr

EV_PER_HARTREE = 27.211386245988  # 1 Hartree in eV (CODATA 2018)
MEV_PER_HARTREE = EV_PER_HARTREE * 1000.0  # 1 Hartree in meV
UHA_PER_HARTREE = 1e6  # 1 Hartree in micro-Hartree
KCAL_MOL_PER_HARTREE = 627.5094740631  # 1 Hartree in kcal/mol (CODATA 2018)
CM1_PER_HARTREE = 219474.6313632  # 1 Hartree in wavenumbers, cm^-1 (CODATA 2018)

HARTREE_PER_KELVIN = 3.166811563e-6  # Boltzmann constant k_B in Hartree per Kelvin (kT = this * T)
ME_PER_AMU = 1822.888486209  # 1 unified atomic mass unit in electron masses

# Old names (before the X_PER_Y convention), kept for one release; use the names above.
BOHR_ANGSTROM = ANGSTROM_PER_BOHR
ANGSTROM_BOHR = BOHR_PER_ANGSTROM
HARTREE_EV = EV_PER_HARTREE
KB_HARTREE_PER_K = HARTREE_PER_KELVIN
AMU_IN_ME = ME_PER_AMU
HARTREE_IN_CM1 = CM1_PER_HARTREE
