"""`TrainConfig`: everything that defines a training run, validated, saved as config.json.

Optimiser defaults are the research code's (graphcore-research/pyscf-ipu, branch
``train``, ``pyscf_ipu/direct/train.py``); warm-up and decay are in optimiser steps.
Every numeric field is checked on construction (type, finiteness, range), with a
message that names the field.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from qpt_nb.dft.molecule import Molecule, check_basis
from qpt_nb.dft.reference import check_engine
from qpt_nb.dft.sizes import ERI_KINDS, PRECISIONS
from qpt_nb.dft.xc import get_xc
from qpt_nb.learn.conformers import SAMPLERS
from qpt_nb.learn.dihedral_sampler import DihedralSampler, parse_range
from qpt_nb.learn.losses import LOSSES
from qpt_nb.learn.network import SPIN_READOUTS, get_config, network_fns
from qpt_nb.learn.schedule import MODES, DataSchedule
from qpt_nb.validate import check_int, check_number


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run (saved as config.json). Optimiser defaults are
    the research code's (graphcore-research/pyscf-ipu, branch train,
    pyscf_ipu/direct/train.py); warm-up and decay are in steps."""

    molecule: str = "uracil"
    xyz: Optional[str] = None  # xyz text; overrides `molecule` when set
    charge: int = 0
    spin: int = 0  # 2S; != 0: an open shell, unrestricted sandwich and two corrections (a neutral
    # radical builtin such as allyl gets its doublet, spin=1, when left at 0)
    spin_readout: str = "embedding"  # open shells: a spin 'embedding' | 'per_spin' readouts
    basis: str = "sto-3g"
    xc: str = "b3lyp5"
    grid_level: int = 3  # labels, evaluations and monitors
    train_grid_level: Optional[int] = None  # grid of the training loss (None: grid_level)
    precision: str = "float64"  # grid work of the training loss: 'float64' | 'float32'
    eri: str = "auto"
    model: str = "nano"
    loss: str = "energy"
    label_engine: str = "pyscf"  # supervised labels: 'pyscf' or 'qpt_nb' (qpt_nb.dft.reference)
    n_refine: int = 3
    mix: float = 0.5
    mix_every: bool = False  # mix the density at every sandwich solve, not only the second
    sampler: str = "wiggle"
    temperature: float = 300.0
    sigma: float = 0.05  # wiggle std, Angstrom
    phi_range: tuple = (0.0, 180.0)  # 'dihedral' sampler: phi ~ U[low, high), degrees
    psi_range: tuple = (0.0, 180.0)  # 'dihedral' sampler: psi ~ U[low, high), degrees
    batch_size: int = 1
    reuse: int = 16  # optimiser steps per conformer batch (qpt_nb.learn.schedule)
    data_schedule: str = "window"  # 'window' (the research code's) | 'consecutive'
    dataset_size: int = 0  # 0: fresh conformers forever; N: cycle over the first N
    seed: int = 0
    lr: float = 5e-4
    warmup_steps: int = 1000
    decay_steps: int = 200_000
    final_lr: float = 1e-7
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    ema_decay: float = 0.0  # parameter averaging (Trainer.params); 0: off
    checkpoint_every: int = 100
    log_every: int = 1
    prefetch_workers: int = 1
    queue_size: int = 2
    devices: int = 1  # data-parallel JAX devices (batch split across them)

    def __post_init__(self):
        _check_numbers(self)
        self.phi_range = parse_range(self.phi_range, "TrainConfig.phi_range")  # also 'LOW,HIGH'
        self.psi_range = parse_range(self.psi_range, "TrainConfig.psi_range")
        if self.train_grid_level is not None:
            check_int(self.train_grid_level, "TrainConfig.train_grid_level", low=0, high=9, hint=" (or None)")
        if not self.xyz and self.spin == 0 and self.charge == 0:
            self.spin = Molecule.builtin(self.molecule).spin  # a radical builtin (allyl): its doublet
        mol = self.molecule_object()  # ValueError: unknown built-in molecule, bad xyz, charge/spin
        check_basis(self.basis, mol.symbols)  # ValueError: unknown basis, or lacks an element
        if self.eri not in ERI_KINDS:
            raise ValueError(f"Unknown TrainConfig.eri={self.eri!r}; choose one of {ERI_KINDS}.")
        check_engine(self.label_engine)
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}.")
        get_xc(self.xc)
        get_config(self.model)
        if self.spin_readout not in SPIN_READOUTS:
            raise ValueError(
                f"TrainConfig.spin_readout must be one of {SPIN_READOUTS}, got {self.spin_readout!r}."
            )
        if self.loss not in LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {LOSSES}.")
        if self.data_schedule not in MODES:
            raise ValueError(f"Unknown data_schedule {self.data_schedule!r}; choose one of {MODES}.")
        if self.ema_decay >= 1.0:
            raise ValueError(
                f"TrainConfig.ema_decay must be < 1 (1 never moves the average), got {self.ema_decay}."
            )
        if not isinstance(self.mix_every, (bool, np.bool_)):
            raise TypeError(f"TrainConfig.mix_every must be True or False, got {self.mix_every!r}.")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"Unknown sampler {self.sampler!r}; choose one of {SAMPLERS}.")
        if self.sampler == "dihedral":  # the torsions must be known: fail now, not mid-run
            DihedralSampler(self.molecule_object(), **self.sampler_kwargs())
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of devices={self.devices}.")

    @property
    def loss_grid_level(self) -> int:
        """Grid level of the training loss: `train_grid_level`, or `grid_level` when unset."""
        return self.grid_level if self.train_grid_level is None else int(self.train_grid_level)

    def network(self):
        """(init_fn, apply_fn) of this run's network (`qpt_nb.learn.network.network_fns`):
        the `model` preset, with two spin channels (W_alpha, W_beta) for an open shell."""
        return network_fns(self.model, spin_channels=2 if self.spin else 1, spin_readout=self.spin_readout)

    def dft_settings(self) -> dict:
        """The DFT settings of this run's labels, evaluations and monitors, as keyword
        arguments of `label`, `prepare_conformer`, `dft_tensors`, `make_rks`:
        ``dict(xc=, grid_level=, eri=)`` (the training loss's grid is `loss_grid_level`).

        >>> TrainConfig().dft_settings()
        {'xc': 'b3lyp5', 'grid_level': 3, 'eri': 'auto'}
        """
        return dict(xc=self.xc, grid_level=self.grid_level, eri=self.eri)

    def data_schedule_object(self) -> DataSchedule:
        """The run's map from optimiser step to conformer batch (`qpt_nb.learn.schedule`)."""
        return DataSchedule(self.data_schedule, reuse=self.reuse, seed=self.seed)

    def molecule_object(self) -> Molecule:
        if self.xyz:
            return Molecule.from_xyz(self.xyz, charge=self.charge, spin=self.spin, name=self.molecule)
        mol = Molecule.builtin(self.molecule)
        if (self.charge, self.spin) != (mol.charge, mol.spin):
            mol = Molecule.from_arrays(mol.symbols, mol.coords_angstrom, self.charge, self.spin, mol.name)
        return mol

    def sampler_kwargs(self) -> dict:
        """Keyword arguments of this run's conformer sampler (`qpt_nb.learn.conformers`)."""
        if self.sampler in ("md", "normal_modes"):
            return dict(temperature=self.temperature)
        if self.sampler == "dihedral":  # torsion atoms: the xyz comment line or the builtin's
            extra = dict(xyz_text=self.xyz) if self.xyz else {}
            return dict(sigma=self.sigma, phi_range=self.phi_range, psi_range=self.psi_range, **extra)
        return dict(sigma=self.sigma)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("data_schedule", "consecutive")  # runs saved before the window existed
        return cls(**d)


_INT_RANGES = dict(
    charge=(None, None),
    spin=(0, None),
    grid_level=(0, 9),
    n_refine=(1, None),
    batch_size=(1, None),
    reuse=(1, None),
    dataset_size=(0, None),
    seed=(0, None),
    warmup_steps=(0, None),
    decay_steps=(1, None),
    checkpoint_every=(1, None),
    log_every=(1, None),
    prefetch_workers=(1, None),
    queue_size=(1, None),
    devices=(1, None),
)


_FLOAT_RANGES = dict(
    mix=(0.0, 1.0, True),
    temperature=(0.0, None, False),
    sigma=(0.0, None, False),
    lr=(0.0, None, False),
    final_lr=(0.0, None, True),
    b1=(0.0, 1.0, True),
    b2=(0.0, 1.0, True),
    eps=(0.0, None, False),
    weight_decay=(0.0, None, True),
    clip_norm=(0.0, None, False),
    ema_decay=(0.0, 1.0, True),
)


def _check_numbers(cfg) -> None:
    """`qpt_nb.validate` errors naming the field for a numeric setting of the wrong type,
    non-finite or out of range (lr=-1 would be gradient ascent, mix=5 no mixing at all)."""
    for name, (low, high) in _INT_RANGES.items():
        check_int(getattr(cfg, name), f"TrainConfig.{name}", low=low, high=high)
    for name, (low, high, inclusive) in _FLOAT_RANGES.items():
        check_number(getattr(cfg, name), f"TrainConfig.{name}", low=low, high=high, low_inclusive=inclusive)
