"""Parameters of the synthetic extract generator, anchored in the stalking literature."""

from __future__ import annotations

import datetime as dt
from dataclasses import MISSING, asdict, dataclass, field, fields

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
    # --- knobs behind the named degenerate shapes (pipeline/synth/shapes.py); the defaults
    # reproduce the plausible world byte for byte ------------------------------------------
    shape: str = "default"  # name of the preset that set the knobs below (goes into extract_id)
    family_probs: tuple[float, ...] | None = None  # new-offence families, FAMILY_PROBS order
    treated_family_probs: tuple[float, ...] | None = None  # ... after a treated person's index
    outcome_probs: tuple[float, ...] | None = None  # new offences' outcomes, OUTCOMES order
    treat_all_sites: tuple[str, ...] = ()  # everyone at these sites is referred and starts
    referral_sex: str | None = None  # "M": only men are referred
    referral_requires_prior_violence: bool = False  # prior violence determines referral
    completion_share: float = 0.6  # share of starters who complete the programme
    dna_share: float = 0.12  # share of treatment sessions not attended (first always attended)
    uniform_sessions: int | None = None  # every starter is offered this many sessions
    custody_from_first_session: bool = False  # the qualifying offence brings custody from the
    #   day after each person's (would-be) first session, never released before extraction
    n_treated: int | None = None  # exactly this many starters the main cohort will admit
    singleton_subgroups: bool = False  # exactly one such starter is 'predatory' / 'professional'
    # the evaluation config's study window, mirrored for n_treated and singleton_subgroups
    study_first_index: dt.date = dt.date(2019, 6, 1)
    grace_days: int = 183
    min_age: int = 18
    # --- simulation-study knobs (benchmarks/trial_simulation.py); the defaults reproduce the
    # plausible world byte for byte --------------------------------------------------------
    referral_delay_shape: float = 2.0  # referral this many gamma-distributed days after the
    referral_delay_scale: float = 30.0  # qualifying offence (shape, scale; mean 60 days)
    adherence_risk_log_or: float = 0.0  # log odds of completing per unit of latent log risk
    #   (centred on the starters; < 0: higher-risk starters complete and attend less)
    unmeasured_prevalence: float = 0.0  # share with a latent binary confounder U (0: none);
    unmeasured_referral_or: float = 1.0  # U's odds ratio on referral and
    unmeasured_outcome_hr: float = 1.0  # its hazard ratio on offending; U is in no extract file

    def __post_init__(self) -> None:
        """Apply the named shape's preset to every knob still at its default value."""
        from pipeline.synth.shapes import SHAPES

        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose from: {', '.join(SHAPES)}")
        for key, value in SHAPES[self.shape].overrides.items():
            if getattr(self, key) == _FIELD_DEFAULTS[key]:
                object.__setattr__(self, key, value)

    @property
    def extract_id(self) -> str:
        base = f"synthetic-{self.extraction_date:%Y-%m}-s{self.seed}"
        return base if self.shape == "default" else f"{base}-{self.shape}"

    def as_json(self) -> dict:
        """JSON-safe view for the ground-truth file."""
        out = asdict(self)
        for key in ("extraction_date", "first_qualifying", "study_first_index"):
            out[key] = out[key].isoformat()
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        # knobs left at their defaults are omitted: existing seeds' ground truth stays as it was
        for key in DEGENERATE_KNOBS:
            if getattr(self, key) == _FIELD_DEFAULTS[key]:
                del out[key]
        return out


_FIELD_DEFAULTS = {f.name: (f.default_factory() if f.default is MISSING else f.default)
                   for f in fields(SynthParams)}
DEGENERATE_KNOBS = (
    "shape", "family_probs", "treated_family_probs", "outcome_probs", "treat_all_sites",
    "referral_sex", "referral_requires_prior_violence", "completion_share", "dna_share",
    "uniform_sessions", "custody_from_first_session", "n_treated", "singleton_subgroups",
    "study_first_index", "grace_days", "min_age", "referral_delay_shape",
    "referral_delay_scale", "adherence_risk_log_or", "unmeasured_prevalence",
    "unmeasured_referral_or", "unmeasured_outcome_hr")

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
