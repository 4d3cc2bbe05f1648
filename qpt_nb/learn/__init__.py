"""Learning: the network and everything that trains it.

network      the Haiku QPT (the only module importing haiku); `network_fns(model)`
batch        `QPTBatch`: one step's precomputed conformers and network inputs
losses       energy / self-consistency / supervised losses, each taking an `apply_fn`
conformers   seeded conformer samplers (wiggle, normal modes, GFN2-xTB MD, dihedral)
dihedral_sampler  the 'dihedral' sampler: torsions phi/psi uniform in a region, clashes rejected
prefetch     background precompute of batches
checkpoint   verified checkpoints
recipe       the measured training recipe (`RECIPE`), `fit_schedule` to a time budget
train        `TrainConfig`, `TrainState`, pure `update`, the steppable `Trainer` (optax)
"""
