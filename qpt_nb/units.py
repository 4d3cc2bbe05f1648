"""Physical constants and unit conversions: the one place they are written.

Inside qpt_nb everything is in atomic units (Bohr, Hartree); Angstrom appears
only at the user boundary (`qpt_nb.dft.molecule.Molecule`, xyz files) and
reports use meV, eV and micro-Hartree, as the Hamiltonian-learning literature
does (QHNet, QH9, arXiv 2402.04030 Table 1).

The Bohr radius is PySCF's value (``pyscf.lib.param.BOHR``, tested equal), so
coordinates converted here agree with PySCF's bit for bit. The energy factors are
CODATA 2018.
"""

BOHR_ANGSTROM = 0.52917721092  # Angstrom per Bohr (PySCF's pyscf.lib.param.BOHR)
ANGSTROM_BOHR = 1.0 / BOHR_ANGSTROM  # Bohr per Angstrom

HARTREE_EV = 27.211386245988  # eV per Hartree (CODATA 2018)
MEV_PER_HARTREE = HARTREE_EV * 1000.0  # meV per Hartree
UHA_PER_HARTREE = 1e6  # micro-Hartree per Hartree
KCAL_MOL_PER_HARTREE = 627.5094740631  # kcal/mol per Hartree (CODATA 2018)

KB_HARTREE_PER_K = 3.166811563e-6  # Boltzmann constant, Hartree per Kelvin
AMU_IN_ME = 1822.888486209  # unified atomic mass unit in electron masses
HARTREE_IN_CM1 = 219474.6313632  # wavenumbers (cm^-1) per Hartree
