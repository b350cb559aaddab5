"""Serving: the graph store and its gathers, one server per model, how a call is measured,
and the latency benchmark (``samlp-lite bench``).

Stage 4 of the pipeline: servers take model classes from :mod:`samlp_lite.models`; weights are
random, since latency and memory depend on shapes only.
"""
