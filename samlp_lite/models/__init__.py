"""The networks: GNN teachers, the students (MLP/GLNN, LINKX, SA-MLP), the latent predictor of
SA-MLP's isolated path, and :mod:`~samlp_lite.models.registry`, the one list of every model
with what it is, how it is built, what it reads when served, its tuning stages and its look.

Stage 2 of the pipeline: it reads :mod:`samlp_lite.data` and :mod:`samlp_lite.config` only.
"""
