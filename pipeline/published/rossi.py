"""Rossi, Berk & Lenihan (1980) recidivism data as a delivery-format extract.

432 men released from Maryland prisons, half randomly given financial aid (``fin``), followed
for 52 weeks; ``week`` is the week of first arrest (``arrest`` = 1) or 52 (censored). The data
ship with lifelines (``load_rossi``); Fox's Cox analysis of them is the published reference.

The mapping (``docs/published_data.md`` gives the reasons and limits) makes the pipeline's naive
comparison hold exactly Rossi's rows and times:

- every prisoner is one person at SITE_A with a qualifying stalking offence (S2A) on
  ``QUALIFYING``, convicted with a custodial sentence and released the day before ``RELEASE``;
- ``fin`` = 1 → a referral accepted on ``RELEASE`` and 13 weekly attended treatment sessions from
  ``RELEASE`` (index date of the started and intention-to-treat cohorts alike); ``fin`` = 0 →
  never referred, so each enters the comparison group on the only treated index date, ``RELEASE``;
- an arrest in week w → a new S2A offence on ``RELEASE`` + 7·w, convicted 28 days later (proven
  well within the grace period), so the time to event is exactly 7·w days;
- the extraction date leaves every person's 52 weeks observed: outcomes are censored at the
  extraction date less the grace period, ``RELEASE`` + 365 days (12 months in the pipeline);
- age → birth year (age = year of index − birth year), race → ethnicity group (Black / Other),
  prio → that many earlier convictions for "other" offences (the covariate ``prior_other``).

Work experience, marital status and parole have no place in the contract. With ``carry=True``
they ride on three history covariates purely as numerical carriers, so that the pipeline's
adjusted model spans Fox's covariates: wexp → one earlier violence offence ended with no further
action (``prior_violence``), mar → one stalking/harassment offence before the study period ended
with no further action, paro → one such offence ended in a conviction (``prior_sh`` = mar + paro,
``prior_sh_convictions`` = paro: a linear re-coding that leaves every other coefficient as is).
"""

from __future__ import annotations

import datetime as dt
from functools import partial

import numpy as np
import pandas as pd

from pipeline.contracts.schema import load_contract
from pipeline.provider_tools.pseudonymise import pseudonym

EXTRACT_ID = "published-rossi-1980"
PROVIDER = "Rossi et al. 1980 (published data via lifelines)"
SECRET = b"stalking-eval published rossi: public data, public key"
SITE = "SITE_A"
RELEASE = dt.date(2019, 7, 1)                       # index date of every person
QUALIFYING = RELEASE - dt.timedelta(days=300)       # qualifying offence
CONVICTION_LAG = 28                                 # days from offence to conviction
PRIOR_SPACING = 60                                  # days between earlier convictions
CARRIER_BEFORE = 2000                               # days before QUALIFYING (outside the study)
SESSIONS = 13                                       # weekly treatment sessions from RELEASE
REFERRAL_LEAD = 28                                  # referral received before release
FOLLOWUP_DAYS = 365                                 # 12 months as the pipeline counts them
GRACE_DAYS = 183                                    # outcomes.grace_days of the configuration
EXTRACTION = RELEASE + dt.timedelta(days=FOLLOWUP_DAYS + GRACE_DAYS)


def load() -> pd.DataFrame:
    """The 432 rows of Rossi's data as lifelines ships them (row order kept: it names people)."""
    from lifelines.datasets import load_rossi

    return load_rossi()


def _iso(days: pd.Series | np.ndarray, origin: dt.date) -> pd.Series:
    """``origin`` + ``days`` as YYYY-MM-DD text (NaN days → missing)."""
    d = pd.Series(days, dtype="float64")
    out = (pd.Timestamp(origin) + pd.to_timedelta(d, unit="D")).dt.strftime("%Y-%m-%d")
    return out.where(d.notna(), None)


def _keys(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return prefix + pd.Series(numbers).astype(str).str.zfill(width)


def _persons(rossi: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({
        "person_key": ids.map(partial(pseudonym, SECRET, prefix="PK")),
        "birth_year": RELEASE.year - rossi["age"].to_numpy(),
        "sex": "M",
        "ethnicity_group": np.where(rossi["race"].to_numpy() == 1, "Black", "Other"),
        "site": SITE,
        "date_of_death": None,
    })


def _offence_rows(keys: pd.Series, who: np.ndarray, day: np.ndarray, code: str, outcome: str,
                  disposal: str | None = None, release_day: float | None = None
                  ) -> pd.DataFrame:
    """Offences of persons ``who`` (row numbers) on days ``day`` relative to RELEASE."""
    day = np.asarray(day, dtype="float64")
    proven = outcome in ("convicted", "cautioned", "acquitted", "nfa")
    return pd.DataFrame({
        "_person": who,
        "person_key": keys.to_numpy()[who],
        "offence_date": _iso(day, RELEASE),
        "recorded_date": _iso(day, RELEASE),
        "offence_code": code,
        "victim_relationship": "none",
        "outcome": outcome,
        "outcome_date": _iso(day + CONVICTION_LAG, RELEASE) if proven else None,
        "disposal": disposal,
        "custody_release_date": (_iso(np.full(len(day), release_day), RELEASE)
                                 if release_day is not None else None),
        "_victim": code in ("S2A", "S2", "S4", "S4A", "VAP"),
    })


def _offences(rossi: pd.DataFrame, keys: pd.Series, carry: bool) -> pd.DataFrame:
    q = float((QUALIFYING - RELEASE).days)
    everyone = np.arange(len(rossi))
    parts = [_offence_rows(keys, everyone, np.full(len(rossi), q), "S2A", "convicted",
                           "custody", -1.0)]
    who = np.repeat(everyone, rossi["prio"].to_numpy())
    k = pd.Series(who).groupby(who).cumcount().to_numpy()
    parts.append(_offence_rows(keys, who, q - PRIOR_SPACING * (k + 1), "OTH", "convicted"))
    arrested = everyone[rossi["arrest"].to_numpy() == 1]
    parts.append(_offence_rows(keys, arrested, 7.0 * rossi["week"].to_numpy()[arrested],
                               "S2A", "convicted"))
    if carry:
        far = q - CARRIER_BEFORE
        for col, code, outcome, shift in (("wexp", "VAP", "nfa", 0), ("mar", "S2", "nfa", 1),
                                          ("paro", "S2", "convicted", 2)):
            has = everyone[rossi[col].to_numpy() == 1]
            parts.append(_offence_rows(keys, has, np.full(len(has), far + shift), code,
                                       outcome))
    # ordered by person (Rossi's row order) and date: offence keys are then stable
    off = pd.concat(parts, ignore_index=True).sort_values(
        ["_person", "offence_date", "offence_code"], kind="stable", ignore_index=True)
    off.insert(0, "offence_key", _keys("OF", np.arange(1, len(off) + 1), 10))
    victim_ids = "ROSSI-VICTIM-" + off["offence_key"]
    off["victim_key"] = victim_ids.map(partial(pseudonym, SECRET, prefix="VK")).where(
        off["_victim"], None)
    return off.drop(columns=["_victim", "_person"])


def _clinic(rossi: pd.DataFrame, keys: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    treated = keys[rossi["fin"].to_numpy() == 1].reset_index(drop=True)
    m = len(treated)
    ref_keys = _keys("RF", np.arange(1, m + 1), 8)
    referrals = pd.DataFrame({
        "referral_key": ref_keys, "person_key": treated,
        "referral_date": _iso(np.full(m, -REFERRAL_LEAD), RELEASE),
        "referral_source": "probation", "decision": "accepted",
        "decision_date": _iso(np.zeros(m), RELEASE),
        "srp_type": None, "risk_rating": None, "personality_disorder": None,
        "psychosis": None, "substance_misuse": None,
        "discharge_date": _iso(np.full(m, 7 * (SESSIONS - 1)), RELEASE),
        "discharge_reason": "completed",
    })
    which = np.repeat(np.arange(m), SESSIONS)
    week = np.tile(np.arange(SESSIONS), m)
    sessions = pd.DataFrame({
        "session_key": _keys("SE", np.arange(1, m * SESSIONS + 1), 10),
        "referral_key": ref_keys.to_numpy()[which],
        "session_date": _iso(7.0 * week, RELEASE),
        "session_type": "treatment", "attended": "true",
    })
    return referrals, sessions


def rossi_tables(rossi: pd.DataFrame | None = None, carry: bool = True
                 ) -> dict[str, pd.DataFrame]:
    """The four extract tables (contract column order) built from Rossi's data."""
    rossi = (load() if rossi is None else rossi).reset_index(drop=True)
    ids = "ROSSI-" + pd.Series(np.arange(1, len(rossi) + 1)).astype(str).str.zfill(3)
    persons = _persons(rossi, ids)
    keys = persons["person_key"]
    referrals, sessions = _clinic(rossi, keys)
    tables = {"police_persons": persons,
              "police_offences": _offences(rossi, keys, carry),
              "clinic_referrals": referrals, "clinic_sessions": sessions}
    return {t: df[list(load_contract(t).column_names)] for t, df in tables.items()}
