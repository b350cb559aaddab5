"""Running experiments: one experiment over splits (:mod:`~samlp_lite.runs.experiment`), grids of
them (:mod:`~samlp_lite.runs.grid`, YAML files in ``runs/grids``), their batch execution with
papermill (:mod:`~samlp_lite.runs.batch`), and hyperparameter search (:mod:`~samlp_lite.runs.tuning`).

Stage 5 of the pipeline: it drives :mod:`samlp_lite.train` and writes :mod:`samlp_lite.records`.
"""
