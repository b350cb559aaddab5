"""Training: the early-stopping loop, the losses, teachers and their cached soft labels,
student distillation, and the two-stage inductive (latent structure) approximation.

Stage 3 of the pipeline: it reads :mod:`samlp_lite.models` and :mod:`samlp_lite.data`.
"""
