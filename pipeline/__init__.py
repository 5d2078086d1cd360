"""Stalking treatment evaluation pipeline (see README.md).

One BLAS thread per process unless the environment says otherwise: the analyses are many
small matrix operations, where OpenBLAS's worker threads spin and compete with DuckDB and
with each other on a 2-core machine (a statsmodels fit measured 10x slower under contention).
Set before numpy is first imported by anything in the package.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
