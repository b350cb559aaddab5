"""Reporting: accuracy and latency tables from the records, published reference numbers and the
paper's claims, analyses (homophily, the gate, fetch sizes) and every figure (``plotting``).

Stage 6 of the pipeline: it reads records and may call any lower stage; nothing imports it
except the command line and the notebooks.
"""
