"""Survival statistics: pure, vectorised, checked against R survival 3.5-3.

No I/O and no orchestration imports. Inputs are numpy arrays / pandas objects.

- Kaplan-Meier with Greenwood SE and log-log/log/plain bands (`kaplan_meier`, `survival_at`,
  `median_survival`); Greenwood bands on estimated weights are not valid (use a bootstrap).
- Log-rank test for 2+ groups (`logrank_test`, as survdiff).
- Restricted mean survival time with R's SE (`rmst`, `rmst_difference`).
- Aalen-Johansen cumulative incidence with exact ties and R's infinitesimal-jackknife SE
  (`cumulative_incidence`), restricted mean time in each state (`expected_time_in_states`).
- Cox regression with Efron ties, strata, case weights, O(n p) robust/cluster sandwich
  (`fit_cox`, `CoxResult`), Harrell's concordance (`concordance_index`) and R's cox.zph
  proportional-hazards test (`ph_test`).
"""

from .competing_risks import cumulative_incidence, expected_time_in_states
from .concordance import concordance_index
from .cox import CoxResult, fit_cox
from .kaplan_meier import kaplan_meier, median_survival, survival_at
from .logrank import LogRankResult, logrank_test
from .ph_test import ph_test
from .rmst import rmst, rmst_difference

__all__ = [
    "CoxResult",
    "LogRankResult",
    "concordance_index",
    "cumulative_incidence",
    "expected_time_in_states",
    "fit_cox",
    "kaplan_meier",
    "logrank_test",
    "median_survival",
    "ph_test",
    "rmst",
    "rmst_difference",
    "survival_at",
]
