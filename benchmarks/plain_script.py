"""The core analysis as a plain pandas + statsmodels + lifelines script: the yardstick that
``bench_pipeline`` compares the whole pipeline run against.

Run: ``.venv/bin/python benchmarks/plain_script.py LANDING_FOLDER``

Reads the four CSVs with pandas; treated people (index = first attended treatment session)
against never-referred people (index = their first stalking or harassment offence); a few
covariates at index (age, sex, prior offences, prior stalking/harassment offences, prior
custody); outcome = the first stalking or harassment offence after index, censored at death or
the extraction date; logistic propensity score (statsmodels), ATT weights, IPW-weighted Cox model
with robust (sandwich) standard errors and weighted Kaplan-Meier curves by arm (lifelines).

Deliberately none of the pipeline's work: no validation or quarantine, no linkage checks, no
risk sets or sequential target trial, no matching, sensitivity analyses, bootstrap, report or
disclosure control. Prints one line with the hazard ratio.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

STALKING = ["S2A", "S4A", "S2", "S4", "SPOB"]
FIRST_INDEX = pd.Timestamp("2019-06-01")
COVARIATES = ["age", "male", "prior_any", "prior_sh", "prior_custody"]


def read(folder: Path) -> dict[str, pd.DataFrame]:
    return {
        "persons": pd.read_csv(folder / "police_persons.csv",
                               parse_dates=["date_of_death"]),
        "offences": pd.read_csv(folder / "police_offences.csv",
                                parse_dates=["offence_date"]),
        "referrals": pd.read_csv(folder / "clinic_referrals.csv",
                                 parse_dates=["referral_date"]),
        "sessions": pd.read_csv(folder / "clinic_sessions.csv",
                                parse_dates=["session_date"]),
    }


def cohort(t: dict[str, pd.DataFrame], extraction: pd.Timestamp) -> pd.DataFrame:
    """One row per person: treated (1) or never referred (0), index date, covariates, outcome."""
    persons, offences = t["persons"], t["offences"]
    sessions = t["sessions"].merge(t["referrals"][["referral_key", "person_key"]],
                                   on="referral_key")
    attended = sessions[(sessions["session_type"] == "treatment")
                        & (sessions["attended"].astype(str).str.lower() == "true")]
    treated = (attended.groupby("person_key")["session_date"].min()
               .rename("index_date").reset_index().assign(treated=1))
    referred = set(t["referrals"]["person_key"])
    sh = offences[offences["offence_code"].isin(STALKING)]
    first_sh = sh.groupby("person_key")["offence_date"].min().rename("index_date").reset_index()
    controls = first_sh[~first_sh["person_key"].isin(referred)].assign(treated=0)
    people = pd.concat([treated, controls], ignore_index=True)
    people = people[(people["index_date"] >= FIRST_INDEX)
                    & (people["index_date"] <= extraction - pd.Timedelta(days=30))]
    people = people.merge(persons[["person_key", "birth_year", "sex", "date_of_death"]],
                          on="person_key")
    people["age"] = people["index_date"].dt.year - people["birth_year"]
    people["male"] = (people["sex"] == "M").astype(float)

    o = offences[["person_key", "offence_date", "offence_code", "disposal"]].merge(
        people[["person_key", "index_date"]], on="person_key")
    o["is_sh"] = o["offence_code"].isin(STALKING)
    o["custody"] = o["disposal"] == "custody"
    # on or before index: a comparison person's index offence counts as a prior offence, as
    # a treated person's qualifying offence does
    before = o[o["offence_date"] <= o["index_date"]]
    prior = before.groupby("person_key").agg(prior_any=("is_sh", "size"),
                                             prior_sh=("is_sh", "sum"),
                                             prior_custody=("custody", "max"))
    people = people.merge(prior, on="person_key", how="left")
    people[["prior_any", "prior_sh", "prior_custody"]] = (
        people[["prior_any", "prior_sh", "prior_custody"]].fillna(0).astype(float))

    after = o[(o["offence_date"] > o["index_date"]) & o["is_sh"]]
    first_after = after.groupby("person_key")["offence_date"].min().rename("event_date")
    people = people.merge(first_after, on="person_key", how="left")
    end = people["date_of_death"].fillna(extraction).clip(upper=extraction)
    people["event"] = (people["event_date"].notna() & (people["event_date"] <= end)).astype(int)
    stop = people["event_date"].where(people["event"] == 1, end)
    people["days"] = (stop - people["index_date"]).dt.days.clip(lower=1).astype(float)
    return people.dropna(subset=COVARIATES)


def analyse(people: pd.DataFrame) -> dict:
    import statsmodels.api as sm
    from lifelines import CoxPHFitter, KaplanMeierFitter

    x = sm.add_constant(people[COVARIATES])
    score = sm.Logit(people["treated"], x).fit(disp=False).predict(x)
    score = score.clip(1e-6, 1 - 1e-6)
    people = people.assign(w=np.where(people["treated"] == 1, 1.0, score / (1 - score)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines' note that weights need robust SEs
        cox = CoxPHFitter().fit(people[["days", "event", "treated", "w", *COVARIATES]],
                                duration_col="days", event_col="event", weights_col="w",
                                robust=True)
        km = {}
        for arm, group in people.groupby("treated"):
            fit = KaplanMeierFitter().fit(group["days"], group["event"], weights=group["w"])
            km[int(arm)] = float(fit.survival_function_at_times(730.0).iloc[0])
    return {"n_treated": int(people["treated"].sum()), "n_control": int((1 - people["treated"])
            .sum()), "hr": float(np.exp(cox.params_["treated"])),
            "se_log_hr": float(cox.standard_errors_["treated"]), "km_24m": km}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    folder = Path(argv[0])
    t0 = time.perf_counter()
    manifest = json.loads((folder / "manifest.json").read_text())
    extraction = pd.Timestamp(manifest["extraction_date"])
    result = analyse(cohort(read(folder), extraction))
    print(f"plain script: {result['n_treated']:,} treated, {result['n_control']:,} never "
          f"referred, IPW hazard ratio {result['hr']:.3f} (robust SE of log HR "
          f"{result['se_log_hr']:.3f}) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
