"""HTTP service: app factory, cross-cutting middleware, auth and the command line."""

import os

# The estimates multiply small matrices many times; OpenBLAS's worker threads only add
# contention there (a fit took 3x longer with them on a busy 2-core machine), and the web
# server has its own concurrency. Set before numpy is first imported.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
