"""Parameters of the synthetic extract generator, anchored in the stalking literature."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

SITES_WITH_CLINIC = ("SITE_A", "SITE_B", "SITE_C", "SITE_D")
ALL_SITES = (*SITES_WITH_CLINIC, "SITE_E")


@dataclass(frozen=True)
class SynthParams:
    """Everything that shapes one synthetic extract; same params and seed, same files."""

    n_people: int = 3000
    seed: int = 42
    extraction_date: dt.date = dt.date(2026, 10, 31)
    first_qualifying: dt.date = dt.date(2019, 1, 1)
    qualifying_lookback_days: int = 365  # the evaluation config's window before first index
    # true effect: hazard multiplier after the first attended treatment session
    true_hr: float = 0.75
    completer_hr: float | None = None  # None: completers share true_hr
    # confounding strength of referral (0 = referral independent of covariates)
    confounding: float = 1.0
    referral_share: float = 0.12  # share of people at clinic sites who are referred
    # outcome process: Weibull-shaped intensity from the qualifying offence
    weibull_shape: float = 0.7
    untreated_one_year_risk: float = 0.60  # any new offence within a year from ~3 months after q
    male_share: float = 0.90
    age_mean: float = 35.0
    age_sd: float = 11.0
    site_probs: tuple[float, ...] = (0.30, 0.25, 0.20, 0.15, 0.10)
    prior_sh_mean: float = 1.1  # gives ~36% with a prior stalking/harassment conviction
    annual_mortality: float = 0.004
    custody_share_of_convictions: float = 0.2
    faults: dict[str, bool] = field(default_factory=dict)

    @property
    def extract_id(self) -> str:
        return f"synthetic-{self.extraction_date:%Y-%m}-s{self.seed}"

    def as_json(self) -> dict:
        """JSON-safe view for the ground-truth file."""
        out = asdict(self)
        for key in ("extraction_date", "first_qualifying"):
            out[key] = out[key].isoformat()
        out["site_probs"] = list(self.site_probs)
        return out


# Hazard ratios of the latent and observed risk factors (DESIGN.md, "plausible parameters").
RISK_HR = {
    "personality_disorder": 1.7,
    "substance_misuse": 1.5,  # with personality disorder together ~2.5
    "psychosis": 0.6,
    "prior_sh_conviction": 1.2,  # per conviction, capped at 5
    "prior_violence": 1.3,
    "ex_partner": 1.2,
    "female": 0.8,
    "age_per_year": 0.975,
}

SRP_TYPES = ("rejected", "intimacy_seeking", "resentful", "incompetent_suitor", "predatory")
SRP_PROBS = (0.36, 0.34, 0.12, 0.10, 0.08)
RELATIONSHIPS = ("ex_partner", "acquaintance", "stranger", "family", "professional")
RELATIONSHIP_PROBS = (0.50, 0.25, 0.10, 0.08, 0.07)
ETHNICITY = ("White", "Black", "Asian", "Mixed", "Other", "Unknown")
ETHNICITY_PROBS = (0.78, 0.06, 0.08, 0.03, 0.02, 0.03)
# offence families of new offences and the codes used within each
FAMILY_PROBS = {"stalking_harassment": 0.60, "malicious_communications": 0.10,
                "violence": 0.12, "other": 0.18}
SH_CODES = ("S2A", "S4A", "S2", "S4", "SPOB")
SH_CODE_PROBS = (0.35, 0.15, 0.35, 0.10, 0.05)
FAMILY_CODE = {"malicious_communications": "MCA", "violence": "VAP", "other": "OTH"}
OUTCOMES = ("convicted", "cautioned", "acquitted", "nfa")
OUTCOME_PROBS = (0.50, 0.14, 0.05, 0.31)
OUTCOME_LAG_MEAN_DAYS = {"convicted": 100, "cautioned": 30, "acquitted": 150, "nfa": 60}
DISPOSALS = ("custody", "community_order", "fine", "discharge")
PLANNED_SESSIONS = 20
