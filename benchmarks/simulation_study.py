"""Simulation study: bias, 95% CI coverage and power of the naive, matched and weighted hazard
ratios on synthetic extracts with confounded referral and a known treatment effect.

Run (2 worker processes; writes docs/simulation_study.md and the per-replicate CSV under
data/simulation_study/):

    .venv/bin/python benchmarks/simulation_study.py --replicates 300 --people 6000 --workers 2

Each replicate draws one extract with ``pipeline.synth.generate``, loads its frames straight
into ``staging.*`` (no CSV writing or ingest: a shortcut for the study only, never used by the
pipeline), builds the cohort, risk sets and measures with the pipeline's SQL, and estimates
the hazard ratio of treatment with the pipeline's own functions:

* ``naive``: Cox, treated vs naive comparison units, no adjustment (robust SE);
* ``matched``: risk-set matching on the propensity logit (1:1, caliper 0.2 SD, no
  replacement), Cox with cluster-robust SE on matched sets;
* ``weighted``: stabilised ATT inverse-probability weights, weighted Cox, SE from the
  bootstrap that re-fits the score (200 resamples, as the pipeline reports it);
* ``weighted_robust``: the same estimate with the robust SE that takes the weights as known;
* ``cox_adjusted`` (for information): covariate-adjusted Cox stratified by site, whose target
  is the *conditional* HR on the observed covariates.

Outcome: first new offence of any kind, police-recorded (family ``any``, proof ``recorded``),
the outcome the generator's potential first-event times describe.

Truth. The generator's hazard ratio (``true_hr``) is conditional on latent clinical traits
that act like frailty, so it is not the estimand of a matched or weighted marginal comparison.
The target here is the marginal hazard ratio in the treated (ATT): for every treated person
of the analysed cohort the generator gives the first-event time after index under treatment
and without it from the same random draw (``truth_persons``); a Cox model of these potential
outcomes, both censored at the person's own censoring date (death or extraction less the grace
period), gives the replicate's true log HR. The scenario's truth is the mean over replicates
(i.e. over many thousands of treated people); bias is the mean estimate minus it, coverage the
share of 95% CIs containing it. Bias against the generator's conditional HR is shown too.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker process

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline.analysis.comparison_effects import effect_rows  # noqa: E402
from pipeline.analysis.comparison_results import cohort_frames  # noqa: E402
from pipeline.analysis.propensity_scores import (  # noqa: E402
    caliper_sd,
    fit_scores,
    score_logits,
)
from pipeline.analysis.risk_set_matching import (  # noqa: E402
    MatchSpec,
    match_risk_sets,
    matched_frame,
    write_risk_set_units,
)
from pipeline.analysis.weighted_results import weighted_analysis  # noqa: E402
from pipeline.cohort.build import build_units, link_persons  # noqa: E402
from pipeline.cohort.measures import write_measures  # noqa: E402
from pipeline.config import EvaluationConfig, load_config  # noqa: E402
from pipeline.survival import fit_cox  # noqa: E402
from pipeline.synth.generator import SyntheticExtract, generate  # noqa: E402
from pipeline.synth.params import SynthParams  # noqa: E402

ESTIMATORS = ("naive", "matched", "weighted", "weighted_robust", "cox_adjusted")
SCENARIOS = {
    "effect": {"true_hr": 0.75, "confounding": 1.0},
    "null": {"true_hr": 1.0, "confounding": 1.0},
    # diagnostic (not run by default): referral independent of covariates
    "null_unconfounded": {"true_hr": 1.0, "confounding": 0.0},
}
DEFAULT_SCENARIOS = ("effect", "null")
SEED_BASE = {"effect": 1_000_000, "null": 2_000_000, "null_unconfounded": 3_000_000}


def study_config(time_scale: str = "calendar") -> EvaluationConfig:
    """The project's configuration with the study's outcome: any new offence, police-recorded,
    on the calendar time scale of the generator's potential outcomes (``at_liberty``: the
    pipeline's default, days in custody after index not counted as time at risk)."""
    cfg = load_config(ROOT / "config" / "evaluation.yaml")
    return dataclasses.replace(cfg, main_family="any", proof="recorded",
                               custody_time_at_risk=time_scale == "calendar")


def stage_extract(con: duckdb.DuckDBPyConnection, extract_id: str, extraction: dt.date,
                  extract: SyntheticExtract) -> None:
    """Load a generated extract's frames straight into ``staging.*`` (study shortcut)."""
    for schema in ("staging", "analysis", "meta"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    frames = {"police_persons": extract.persons, "police_offences": extract.offences,
              "clinic_referrals": extract.referrals, "clinic_sessions": extract.sessions}
    for table, df in frames.items():
        dates = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
        replace = ", ".join(f'CAST("{c}" AS DATE) AS "{c}"' for c in dates)
        star = f"* REPLACE ({replace})" if dates else "*"
        con.register("_frame", df)
        con.execute(f"CREATE OR REPLACE TABLE staging.{table} AS SELECT ? AS _extract_id, "
                    f"row_number() OVER () + 1 AS _line, {star} FROM _frame", [extract_id])
        con.unregister("_frame")


def build_warehouse(params: SynthParams, cfg: EvaluationConfig
                    ) -> tuple[duckdb.DuckDBPyConnection, SyntheticExtract]:
    """In-memory warehouse with the cohort, measures and risk-set units of one extract."""
    extract = generate(params)
    con = duckdb.connect()
    con.execute("SET threads = 1")
    eid, extraction = params.extract_id, params.extraction_date
    stage_extract(con, eid, extraction, extract)
    link_persons(con, eid)
    build_units(con, eid, cfg, extraction)
    write_measures(con, eid, cfg, extraction)
    write_risk_set_units(con, eid, cfg, extraction)
    return con, extract


def true_log_hr(extract: SyntheticExtract, treated_keys: pd.Series, params: SynthParams,
                cfg: EvaluationConfig) -> float:
    """Marginal log HR of treatment among ``treated_keys`` from the potential outcomes."""
    tp = extract.truth_persons.set_index("person_key").loc[treated_keys.to_numpy()]
    death = extract.persons.set_index("person_key").loc[treated_keys.to_numpy(),
                                                         "date_of_death"]
    cap = pd.Timestamp(params.extraction_date - dt.timedelta(days=cfg.grace_days))
    end = death.where(death.notna() & (death < cap), cap).to_numpy()
    censor = (end - tp["index_date"].to_numpy()) / np.timedelta64(1, "D")
    parts = []
    for treated, col in ((1, "first_event_days_if_treated"), (0, "first_event_days_if_untreated")):
        t = tp[col].to_numpy(float)
        parts.append(pd.DataFrame({"time": np.minimum(t, censor), "event": (t <= censor)
                                   .astype(int), "treated": treated}))
    data = pd.concat(parts, ignore_index=True)
    res = fit_cox(data, "time", "event", ["treated"], compute_concordance=False)
    return float(res.coef["treated"])


def _hr(rows: pd.DataFrame, measure: str = "hr") -> dict:
    r = rows[rows["measure"] == measure].iloc[0]
    return {"log_hr": np.log(r["estimate"]), "lower": np.log(r["lower"]),
            "upper": np.log(r["upper"]), "p": r["p"]}


def replicate(scenario: str, index: int, n_people: int, time_scale: str = "calendar") -> dict:
    """One extract: estimates of every estimator and the truth (one row per replicate)."""
    cfg = study_config(time_scale)
    params = SynthParams(n_people=n_people, seed=SEED_BASE[scenario] + index,
                         **SCENARIOS[scenario])
    t0 = time.perf_counter()
    con, extract = build_warehouse(params, cfg)
    try:
        units, pairs = cohort_frames(con, params.extract_id, cfg, "started")
    finally:
        con.close()
    out: dict = {"scenario": scenario, "replicate": index, "seed": params.seed,
                 "n_treated": int(units["treated"].sum()),
                 "n_comparison": int((units["treated"] == 0).sum())}
    model = fit_scores(units, cfg)
    pairs = pairs.assign(logit=score_logits(model, pairs, cfg))
    treated = units[units["treated"] == 1]
    t_logit = pd.Series(model.logits[(units["treated"] == 1).to_numpy()],
                        index=treated["person_key"].to_numpy())
    result = match_risk_sets(t_logit, pairs, MatchSpec.from_config(cfg), caliper_sd(model))
    mf = matched_frame(units, pairs, result.matches)
    hr_only = frozenset({"hr"})
    estimates = {
        "naive": effect_rows(units, cfg, "naive", measures=hr_only),
        "matched": effect_rows(mf, cfg, "matched", weights_col="weight",
                               cluster_col="cluster", measures=hr_only),
        "weighted": weighted_analysis(units, model.scores, model, cfg, "weighted", "ATT",
                                      measures=hr_only)[0],
        "cox_adjusted": effect_rows(units, cfg, "naive", adjust=True, measures=hr_only),
    }
    estimates["weighted_robust"] = estimates["weighted"]
    measure = {"cox_adjusted": "hr_adjusted", "weighted_robust": "hr_robust"}
    for name, rows in estimates.items():
        vals = _hr(rows, measure.get(name, "hr"))
        out.update({f"{name}_{k}": v for k, v in vals.items()})
    out["n_matched"] = int(result.counts["n_treated_matched"])
    out["true_log_hr"] = true_log_hr(extract, treated["person_key"], params, cfg)
    matched_keys = mf.loc[mf["treated"] == 1, "person_key"]
    out["true_log_hr_matched"] = true_log_hr(extract, matched_keys, params, cfg)
    out["seconds"] = time.perf_counter() - t0
    return out


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    """Bias, empirical and model SE, coverage, and rejection rate per scenario and estimator."""
    rows = []
    for scenario, d in reps.groupby("scenario", sort=False):
        truth = float(d["true_log_hr"].mean())
        conditional = float(np.log(SCENARIOS[scenario]["true_hr"]))
        for est in ESTIMATORS:
            x = d[f"{est}_log_hr"]
            target = conditional if est == "cox_adjusted" else truth
            se_model = ((d[f"{est}_upper"] - d[f"{est}_lower"]) / (2 * 1.959964)).mean()
            covered = (d[f"{est}_lower"] <= target) & (target <= d[f"{est}_upper"])
            rows.append({
                "scenario": scenario, "estimator": est, "replicates": len(d),
                "true_log_hr": target, "mean_log_hr": x.mean(),
                "bias": x.mean() - target, "mc_se_bias": x.std(ddof=1) / np.sqrt(len(d)),
                "bias_vs_conditional": x.mean() - conditional,
                "empirical_se": x.std(ddof=1), "mean_model_se": se_model,
                "coverage": covered.mean(), "rejection_rate": (d[f"{est}_p"] < 0.05).mean()})
    return pd.DataFrame(rows)


CRITERIA = {"bias": 0.05, "coverage": (0.92, 0.98)}


def criteria_lines(summary: pd.DataFrame) -> list[str]:
    """The acceptance criteria of issue 5, checked against the table."""
    lines = ["| check | result | met |", "|---|---|---|"]
    s = summary.set_index(["scenario", "estimator"])

    def row(check: str, value: str, ok: bool) -> None:
        lines.append(f"| {check} | {value} | {'yes' if ok else 'NO'} |")

    for scenario in summary["scenario"].unique():
        naive = s.loc[(scenario, "naive")]
        row(f"{scenario}: naive estimate biased (bias > 4 MC SE)",
            f"{naive['bias']:+.3f} ({naive['mc_se_bias']:.3f})",
            abs(naive["bias"]) > 4 * naive["mc_se_bias"])
        for est in ("matched", "weighted"):
            r = s.loc[(scenario, est)]
            lo, hi = CRITERIA["coverage"]
            row(f"{scenario}: {est} abs(bias of log HR) < {CRITERIA['bias']}",
                f"{r['bias']:+.3f}", abs(r["bias"]) < CRITERIA["bias"])
            row(f"{scenario}: {est} 95% CI coverage in [{lo:.0%}, {hi:.0%}]",
                f"{r['coverage']:.1%}", lo <= r["coverage"] <= hi)
            if scenario == "null":
                half = 1.959964 * np.sqrt(0.05 * 0.95 / r["replicates"])
                row(f"null: {est} false-positive rate near 5% (binomial 95% range "
                    f"{0.05 - half:.1%} to {0.05 + half:.1%})", f"{r['rejection_rate']:.1%}",
                    abs(r["rejection_rate"] - 0.05) <= half)
    return lines


def markdown(summary: pd.DataFrame, reps: pd.DataFrame, args: argparse.Namespace,
             seconds: float) -> str:
    """The results page (docs/simulation_study.md)."""
    command = (f".venv/bin/python benchmarks/simulation_study.py --replicates "
               f"{args.replicates} --people {args.people} --workers {args.workers}"
               + ("" if args.time_scale == "calendar" else f" --time-scale {args.time_scale}"))
    eff = reps[reps["scenario"] == "effect"] if (reps["scenario"] == "effect").any() else reps
    lines = [
        "# Simulation study: naive, matched and weighted hazard ratios",
        "",
        "Does the treated-vs-comparison analysis recover a known treatment effect when referral "
        "is confounded? Generated by `benchmarks/simulation_study.py` (kept apart from the "
        "tests; `tests/analysis/test_comparison_simulation.py` runs a quick version). "
        "Regenerate this page with",
        "",
        "```sh",
        f"nohup {command} &",
        "```",
        "",
        "## Design",
        "",
        f"- {args.replicates} synthetic extracts per scenario, {args.people:,} people each "
        f"(on average {reps['n_treated'].mean():.0f} treated, "
        f"{reps['n_comparison'].mean():.0f} naive comparison units, "
        f"{reps['n_matched'].mean():.0f} treated matched); referral depends on prior "
        "offending, victim relationship, age and site (`confounding = 1.0`). Scenarios: "
        "`effect` (generator HR 0.75 after the first treatment session) and `null` (HR 1).",
        "- Each extract goes through the pipeline's own cohort SQL (risk sets, covariates on "
        "the index date, outcomes) and estimators; only CSV writing and ingest are skipped "
        "(the generated frames are loaded straight into `staging.*`).",
        "- Outcome: first new offence of any kind, police-recorded (the process the generator's "
        f"potential outcomes describe), on the {args.time_scale.replace('_', '-')} time scale.",
        "- Estimators: `naive` (Cox, treated vs naive comparison units, robust SE); `matched` "
        "(risk-set matching on the logit of the propensity score, 1:1, caliper 0.2 SD, "
        "without replacement; Cox with SEs clustered on matched sets); `weighted` (stabilised "
        "ATT weights, weighted Cox, SE from 200 bootstrap resamples re-fitting the score, as "
        "the pipeline reports it); `weighted_robust` (the same estimate with the robust SE "
        "that takes the weights as known); `cox_adjusted` (covariate-adjusted Cox stratified "
        "by site, for information: its target is the conditional HR).",
        "- Truth: the generator's HR is conditional on latent clinical traits that act as "
        "frailty, so it is not what a marginal (matched or weighted) comparison estimates. "
        "The estimand is the marginal HR in the treated (ATT): a Cox model of every treated "
        "person's two potential first-event times (under treatment and without it, from the "
        "same random draw in `truth_persons`), both censored at the person's censoring date. "
        "The scenario's truth is the mean over replicates (log scale).",
        "",
        "## Results",
        "",
        "| scenario | estimator | true log HR | mean log HR | bias (MC SE) | bias vs conditional "
        "| empirical SE | mean model SE | 95% CI coverage | rejection rate (p < 0.05) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        rate = "power" if r.scenario == "effect" else "false-positive rate"
        lines.append(
            f"| {r.scenario} | {r.estimator} | {r.true_log_hr:.3f} | {r.mean_log_hr:.3f} | "
            f"{r.bias:+.3f} ({r.mc_se_bias:.3f}) | {r.bias_vs_conditional:+.3f} | "
            f"{r.empirical_se:.3f} | {r.mean_model_se:.3f} | {100 * r.coverage:.1f}% | "
            f"{100 * r.rejection_rate:.1f}% ({rate}) |")
    lines += [
        "",
        f"True marginal HR in the treated: {np.exp(eff['true_log_hr'].mean()):.3f} "
        f"(log {eff['true_log_hr'].mean():.3f}; generator's conditional HR "
        f"{SCENARIOS[eff['scenario'].iloc[0]]['true_hr']}); among the matched treated only "
        f"{np.exp(eff['true_log_hr_matched'].mean()):.3f}. Under the null both are exactly 1. "
        "`cox_adjusted` is compared with the conditional HR, the others with the marginal one.",
        "",
        "Bias: mean estimate minus the true log HR, with its Monte Carlo SE. Empirical SE: SD "
        "of the estimates; model SE: mean of the SEs implied by the CIs. Coverage: share of "
        "95% CIs containing the truth. Rejection rate: power in `effect`, false-positive rate "
        "in `null`.",
        "",
        f"Wall time {seconds / 60:.1f} min with {args.workers} worker processes "
        f"({reps['seconds'].mean():.1f} s per replicate per process).",
        "",
        "## Acceptance criteria (issue 5)",
        "",
        *criteria_lines(summary),
        "",
        "## Notes",
        "",
        "- The naive comparison is biased towards harm: people referred have more prior "
        "offending, a risk factor, so untreated comparison people look better than they are.",
        "- Standard errors. Under the effect the model SEs match the empirical SEs; under the "
        "null every estimator's model SE, the naive Cox model's included, exceeds its "
        "empirical SE by 5-10%, so coverage there is above 95% and the false-positive rates "
        "are at or below 5%. A likely reason: comparison units are drawn in step with the "
        "treated (same sites, index dates and time since the qualifying offence), which "
        "removes between-extract variability that a sandwich or a bootstrap of independent "
        "people counts; the matched estimator, whose SE is clustered on matched sets, is the "
        "least affected. For the weighted HR the pipeline reports the SE of a bootstrap that "
        "re-fits the score (`weighted`; the robust SE that takes the weights as known is kept "
        "as `hr_robust`, here `weighted_robust`): the two give nearly the same intervals.",
        "- Matching targets the treated people who find a match within the caliper; their "
        "true HR (above) barely differs from that of all treated here. Unmatched treated "
        "people are counted in `analysis.match_summary` and described in "
        "`analysis.unmatched_profile`.",
        "- Time scale. The pipeline's default outcome does not count days in custody after "
        "index as time at risk (at-liberty time). The generator's potential outcomes are in "
        "calendar time and custody spells after index (convictions of offences committed "
        "before it, including the qualifying offence) move the at-liberty clock against the "
        "generator's time-since-offence hazard; in exploratory runs (40 replicates) the "
        "weighted and adjusted estimates were shifted by about -0.03 on the at-liberty scale "
        "against about -0.01 on the calendar scale, and the shift vanished in a generator "
        "without custody. The study therefore estimates on the calendar scale, the one its "
        "truth is defined on; `--time-scale at_liberty` reruns it on the default scale.",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(s, i, args.people, args.time_scale) for s in args.scenarios
            for i in range(args.replicates)]
    t0 = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            rows = list(pool.map(_job, jobs, chunksize=4))
    else:
        rows = [_job(j) for j in jobs]
    seconds = time.perf_counter() - t0
    reps = pd.DataFrame(rows)
    return reps, summarise(reps), seconds


def _job(job: tuple[str, int, int, str]) -> dict:
    return replicate(*job)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--scenarios", nargs="+", default=list(DEFAULT_SCENARIOS),
                        choices=SCENARIOS)
    parser.add_argument("--time-scale", choices=("calendar", "at_liberty"), default="calendar")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "simulation_study.md")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "simulation_study")
    parser.add_argument("--redraw", action="store_true",
                        help="rebuild the page from the last run's files in --out (no run)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    info = args.out / "run.json"
    if args.redraw:
        # keep_default_na: the scenario "null" must stay a string
        reps = pd.read_csv(args.out / "replicates.csv", keep_default_na=False,
                           na_values=[""])
        run_info = json.loads(info.read_text())
        for key in ("replicates", "people", "workers", "time_scale"):
            setattr(args, key, run_info[key])
        seconds = run_info["seconds"]
        summary = summarise(reps)
    else:
        reps, summary, seconds = run(args)
        info.write_text(json.dumps({"seconds": seconds, "replicates": args.replicates,
                                    "people": args.people, "workers": args.workers,
                                    "time_scale": args.time_scale}))
    reps.to_csv(args.out / "replicates.csv", index=False)
    summary.to_csv(args.out / "summary.csv", index=False)
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    args.docs.write_text(markdown(summary, reps, args, seconds))
    print(summary.to_string(index=False))
    print(f"{len(reps)} replicates in {seconds / 60:.1f} min; table written to {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
