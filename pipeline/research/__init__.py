"""The researcher API: open a published snapshot, read frames, re-fit the primary analysis.

>>> from pipeline.research import open_snapshot, refit_primary
>>> snap = open_snapshot()                         # newest snapshot; never blocks a run
>>> snap.cohort(), snap.outcomes(family="any"), snap.estimates("matched")   # doctest: +SKIP
>>> refit_primary(snap, covariates=["age", "prior_sh", "sex"]).summary     # doctest: +SKIP

Tables and columns: ``docs/data_dictionary.md`` (``load_dictionary()``).
"""

from pipeline.research.api import Snapshot, open_snapshot
from pipeline.research.dictionary import load_dictionary
from pipeline.research.refit import PrimaryRefit, refit_primary

__all__ = ["PrimaryRefit", "Snapshot", "load_dictionary", "open_snapshot", "refit_primary"]
