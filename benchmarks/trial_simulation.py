"""Simulation study of the report's headline analysis: the risk-set weighted hazard ratio
(``weighted_risk_sets``) on the stalking/harassment, proven, time-at-liberty outcome of
``config/evaluation.yaml``, in six generator worlds (docs/trial_simulation.md).

Run (2 worker processes, nice; writes docs/trial_simulation.md and the per-replicate CSV under
data/trial_simulation/, appended as replicates finish so that a stop keeps what finished):

    nice -n 10 .venv/bin/python benchmarks/trial_simulation.py --replicates 300 --workers 2

``--redraw`` rebuilds the page from data/trial_simulation/replicates.jsonl without running;
``--quick`` runs one replicate of 1,500 people per scenario (used by the test).

Each replicate draws one extract with ``pipeline.synth.generate``, loads its frames straight
into ``staging.*`` (as benchmarks/simulation_study.py does), builds the cohort, risk sets and
measures with the pipeline's SQL and estimates with the pipeline's own functions:

* ``weighted_risk_sets`` (primary): ``comparison_results._primary`` on the headline outcome
  (person-clustered robust SE; the bootstrap is switched off: the HR does not use it);
* ``weighted_risk_sets_calendar``: the same on the calendar time scale (days in custody
  counted as time at risk), to measure what the time-at-liberty scale does to the estimate;
* ``matched``: risk-set matching on the propensity logit (1:1, caliper 0.2 SD), Cox with SEs
  clustered on matched sets (a sensitivity analysis of the report);
* ``naive``: unadjusted Cox, treated vs naive comparison units (robust SE);
* the treated-only dose association per 5 sessions (``treated_only_estimates``).

Truth. The generator's potential outcomes (``truth_persons``) are the first new offence of
any kind. The headline outcome is the first *proven stalking/harassment* offence: new offences
are stalking/harassment with a fixed probability and proven within the grace period with a
fixed probability, both independent of treatment, so the headline events are the generator's
offence process thinned by a constant factor ``c`` (``HEADLINE_THINNING``). With the
generator's own draw (common random numbers) each treated person's potential first headline
event is then known under both arms: with ``H = W(t + T0) - W(t)`` the cumulative baseline
intensity to the untreated first offence (``W(s) = s**k``, ``t`` the index in days since the
qualifying offence), the first event of the thinned process is at ``W(t + T) - W(t) = H / c``
untreated and ``H / (c * hr)`` treated. The true log HR of a replicate is a Cox model of these
potential times among the primary analysis's treated people, both censored at the person's
own censoring date (death or extraction less the grace period), on calendar time; the
scenario's truth is its mean over replicates. Offences are not committed in custody, and time
at liberty is not calendar time: that part is not in the truth, and
``weighted_risk_sets_calendar`` shows its size.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker process

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.simulation_study import build_warehouse, true_log_hr  # noqa: E402
from pipeline.analysis import risk_set_weighting  # noqa: E402
from pipeline.analysis.comparison_effects import effect_rows  # noqa: E402
from pipeline.analysis.comparison_results import _primary, cohort_frames  # noqa: E402
from pipeline.analysis.propensity_scores import (  # noqa: E402
    caliper_sd,
    fit_scores,
    score_logits,
)
from pipeline.analysis.risk_set_matching import (  # noqa: E402
    MatchSpec,
    match_risk_sets,
    matched_frame,
)
from pipeline.analysis.treated_only import landmark_frame, treated_only_estimates  # noqa: E402
from pipeline.comparison.effects import _hr_to_rr, evalue  # noqa: E402
from pipeline.config import EvaluationConfig, load_config  # noqa: E402
from pipeline.survival import fit_cox  # noqa: E402
from pipeline.synth import params as P  # noqa: E402
from pipeline.synth.draws import weibull_cum, weibull_inv  # noqa: E402
from pipeline.synth.params import SynthParams  # noqa: E402

ESTIMATORS = ("weighted_risk_sets", "weighted_risk_sets_calendar", "matched", "naive")
PRIMARY = "weighted_risk_sets"
# name: (generator parameters, description)
SCENARIOS: dict[str, tuple[dict, str]] = {
    "effect": ({"true_hr": 0.75}, "(a) generator HR 0.75, confounding 1"),
    "null": ({"true_hr": 1.0}, "(a) generator HR 1, confounding 1"),
    "delayed": ({"true_hr": 0.75, "referral_delay_shape": 1.5, "referral_delay_scale": 100.0},
                "(b) HR 0.75; referral Gamma(1.5, 100) days after the qualifying offence "
                "(mean 150 days; default Gamma(2, 30), mean 60)"),
    "adherence": ({"true_hr": 0.75, "adherence_risk_log_or": -2.0},
                  "(c) HR 0.75 whatever the dose; log OR of completing -2 per unit of latent "
                  "log risk (higher-risk starters complete and attend less)"),
    "small": ({"true_hr": 0.75, "n_treated": 80, "confounding": 2.0},
              "(d) HR 0.75; exactly 80 treated admitted; confounding 2"),
    "unmeasured": ({"true_hr": 1.0, "unmeasured_prevalence": 0.4,
                    "unmeasured_referral_or": 3.0, "unmeasured_outcome_hr": 0.6},
                   "(e) HR 1; latent binary U (40%) not in the extract: referral OR 3, "
                   "offending HR 0.6"),
}
SEED_BASE = {name: 10_000_000 * (i + 1) for i, name in enumerate(SCENARIOS)}
TARGET_SCENARIOS = ("effect", "delayed", "small")  # |bias| < 0.05 and coverage 92-98%
BIAS_TARGET = 0.05
COVERAGE_TARGET = (0.92, 0.98)
DOSE_FPR_TARGET = 0.06


def headline_config(calendar: bool = False) -> EvaluationConfig:
    """config/evaluation.yaml as it is (stalking/harassment, proven, time at liberty), with
    the bootstrap off (the HR does not use it); ``calendar``: custody counted as time at risk."""
    cfg = load_config(ROOT / "config" / "evaluation.yaml")
    comp = dataclasses.replace(cfg.comparison, bootstrap_replicates=0)
    return dataclasses.replace(cfg, comparison=comp,
                               custody_time_at_risk=calendar or cfg.custody_time_at_risk)


def headline_thinning(cfg: EvaluationConfig) -> float:
    """Share of the generator's new offences that count for the headline outcome: the
    family's share times the chance of being convicted or cautioned within ``grace_days``,
    with the generator's recording and outcome lags (Monte Carlo, fixed seed)."""
    codes = set(cfg.families[cfg.main_family])
    if not codes >= set(P.SH_CODES) or cfg.main_family != "stalking_harassment":
        raise ValueError("the truth is derived for the stalking/harassment family only")
    share = P.FAMILY_PROBS["stalking_harassment"]
    return share if cfg.proof == "recorded" else share * _proven_share(cfg.grace_days)


@functools.lru_cache(maxsize=8)
def _proven_share(grace_days: int, draws: int = 2_000_000, seed: int = 1) -> float:
    rng = np.random.default_rng(seed)
    outcome = rng.choice(len(P.OUTCOMES), size=draws, p=P.OUTCOME_PROBS)
    mean = np.array([P.OUTCOME_LAG_MEAN_DAYS[o] for o in P.OUTCOMES])[outcome]
    lag = rng.geometric(0.25, draws) - 1 + np.round(rng.gamma(2.0, mean / 2.0))
    proven = np.isin(np.array(P.OUTCOMES)[outcome], ("convicted", "cautioned"))
    return float(np.mean(proven & (lag <= grace_days)))


def headline_truth(extract, treated_keys: np.ndarray, params: SynthParams,
                   cfg: EvaluationConfig, c: float) -> float:
    """True marginal log HR in ``treated_keys`` for the headline outcome (module docstring)."""
    tp = extract.truth_persons.set_index("person_key").loc[treated_keys]
    k = params.weibull_shape
    t = ((tp["index_date"] - tp["qualifying_date"]) / np.timedelta64(1, "D")).to_numpy(float)
    w0 = weibull_cum(t, k)
    h = weibull_cum(t + tp["first_event_days_if_untreated"].to_numpy(float), k) - w0
    hr = tp["hazard_multiplier"].to_numpy(float)
    death = extract.persons.set_index("person_key").loc[treated_keys, "date_of_death"]
    cap = pd.Timestamp(params.extraction_date) - pd.Timedelta(days=cfg.grace_days)
    end = death.where(death.notna() & (death < cap), cap).to_numpy()
    censor = (end - tp["index_date"].to_numpy()) / np.timedelta64(1, "D")
    parts = []
    for arm, mult in ((1, hr), (0, 1.0)):
        time_ = weibull_inv(w0 + h / (c * mult), k) - t
        parts.append(pd.DataFrame({"time": np.minimum(time_, censor),
                                   "event": (time_ <= censor).astype(int), "treated": arm}))
    res = fit_cox(pd.concat(parts, ignore_index=True), "time", "event", ["treated"],
                  compute_concordance=False)
    return float(res.coef["treated"])


def _hr(rows: pd.DataFrame, prefix: str, measure: str = "hr") -> dict:
    r = rows[rows["measure"] == measure]
    if r.empty or not np.isfinite(r["estimate"].iloc[0]) or r["estimate"].iloc[0] <= 0:
        return {f"{prefix}_{k}": np.nan for k in ("log_hr", "lower", "upper", "p")}
    r = r.iloc[0]
    return {f"{prefix}_log_hr": np.log(r["estimate"]), f"{prefix}_lower": np.log(r["lower"]),
            f"{prefix}_upper": np.log(r["upper"]), f"{prefix}_p": r["p"]}


def replicate(scenario: str, index: int, n_people: int) -> dict:
    """One extract: every estimate, the truths and the counts (one row per replicate)."""
    cfg, cfg_cal = headline_config(), headline_config(calendar=True)
    params = SynthParams(n_people=n_people, seed=SEED_BASE[scenario] + index,
                         **SCENARIOS[scenario][0])
    t0 = time.perf_counter()
    con, extract = build_warehouse(params, cfg)
    try:
        units, pairs = cohort_frames(con, params.extract_id, cfg, "started")
        units_cal, pairs_cal = cohort_frames(con, params.extract_id, cfg_cal, "started")
        landmark = landmark_frame(con, params.extract_id, cfg)
    finally:
        con.close()
    out: dict = {"scenario": scenario, "replicate": index, "seed": params.seed,
                 "n_people": n_people, "n_treated": int(units["treated"].sum()),
                 "n_comparison_pairs": len(pairs),
                 "events_treated": int(units.loc[units["treated"] == 1, "event"].sum())}
    rows, _, frame = _primary(units, pairs, cfg)
    out.update(_hr(rows, PRIMARY))
    out["evalue"] = float(rows.loc[rows["measure"] == "evalue_hr", "estimate"].iloc[0]) \
        if (rows["measure"] == "evalue_hr").any() else np.nan
    # the same weights (the score does not depend on the outcome) on the calendar time scale;
    # only the hr row (the unadjusted weighted Cox model, as in _primary)
    cal = risk_set_weighting.risk_set_weights(units_cal, pairs_cal, cfg_cal).frame
    out.update(_hr(effect_rows(cal, cfg_cal, PRIMARY, weights_col="weight",
                               cluster_col="cluster", measures=frozenset({"hr"})),
                   "weighted_risk_sets_calendar"))
    hr_only = frozenset({"hr"})
    out.update(_hr(effect_rows(units, cfg, "naive", measures=hr_only), "naive"))
    try:
        model = fit_scores(units, cfg)
        pairs = pairs.assign(logit=score_logits(model, pairs, cfg))
        treated = units[units["treated"] == 1]
        t_logit = pd.Series(model.logits[(units["treated"] == 1).to_numpy()],
                            index=treated["person_key"].to_numpy())
        result = match_risk_sets(t_logit, pairs, MatchSpec.from_config(cfg), caliper_sd(model))
        mf = matched_frame(units, pairs, result.matches)
        out.update(_hr(effect_rows(mf, cfg, "matched", weights_col="weight",
                                   cluster_col="cluster", measures=hr_only), "matched"))
        out["n_matched"] = int(result.counts["n_treated_matched"])
    except Exception as exc:
        out.update({f"matched_{k}": np.nan for k in ("log_hr", "lower", "upper", "p")})
        out["matched_error"] = type(exc).__name__
    dose = treated_only_estimates(landmark, cfg)
    out.update(_hr(dose, "dose", "hr_per_5_sessions"))
    out.update(_hr(dose, "completers", "hr_completers"))
    out["n_landmark"] = len(landmark)
    out["dose_sessions_mean"] = float(landmark["sessions_by_landmark"].mean()) \
        if len(landmark) else np.nan
    # truth among the primary analysis's treated (those with at least one eligible control)
    keys = frame.loc[frame["treated"] == 1, "person_key"].to_numpy() if frame is not None \
        else units.loc[units["treated"] == 1, "person_key"].to_numpy()
    out["n_trials"] = len(keys)
    c = headline_thinning(cfg)
    out["true_log_hr"] = headline_truth(extract, keys, params, cfg, c)
    out["true_log_hr_any"] = true_log_hr(extract, pd.Series(keys), params, cfg)
    if params.unmeasured_prevalence > 0 and frame is not None:
        u = extract.truth_persons.set_index("person_key")["unmeasured"]
        fu = u.reindex(frame["person_key"]).to_numpy(float)
        t = frame["treated"].to_numpy() == 1
        w = frame["weight"].to_numpy(float)
        out["u_prev_treated"] = float(fu[t].mean())
        out["u_prev_comparison_weighted"] = float(np.sum(w[~t] * fu[~t]) / np.sum(w[~t]))
        out["u_prev_comparison_crude"] = float(units.loc[units["treated"] == 0, "person_key"]
                                               .map(u).mean())
    out["seconds"] = time.perf_counter() - t0
    return out


def itt_check(scenario: str, reps: int, n_people: int) -> pd.DataFrame:
    """The primary analysis is intention-to-treat within the sequential trials: a control who
    starts treatment later keeps their arm, whereas the truth compares starting with never
    starting. Per replicate (the study's seeds, calendar time scale): the weighted share of
    comparison rows whose person starts later, the share of comparison follow-up after that
    start, and the weighted HR with those rows censored at the start (no IPCW) next to the
    intention-to-treat one (``--itt-check N``; docs/trial_simulation.md, Notes)."""
    cfg = headline_config(calendar=True)
    one = frozenset({"hr"})
    rows = []
    for i in range(reps):
        params = SynthParams(n_people=n_people, seed=SEED_BASE[scenario] + i,
                             **SCENARIOS[scenario][0])
        con, extract = build_warehouse(params, cfg)
        units, pairs = cohort_frames(con, params.extract_id, cfg, "started")
        con.close()
        fr = risk_set_weighting.risk_set_weights(units, pairs, cfg).frame
        tp = extract.truth_persons.set_index("person_key")
        start = tp["index_date"].where(tp["treated"])
        ctrl = fr["treated"] == 0
        after = (fr["person_key"].map(start) - pd.to_datetime(fr["index_date"])).dt.days
        later = ctrl & after.notna()
        cut = later & (after < fr["time_days"])
        pp = fr.copy()
        pp.loc[cut, "time_days"] = after[cut].clip(lower=0.5)
        pp.loc[cut, "event"] = 0
        w = fr["weight"]

        def loghr(frame: pd.DataFrame) -> float:
            r = effect_rows(frame, cfg, PRIMARY, weights_col="weight", cluster_col="cluster",
                            measures=one)
            return float(np.log(r.loc[r["measure"] == "hr", "estimate"].iloc[0]))

        rows.append({
            "scenario": scenario, "replicate": i,
            "share_controls_start_later": float(w[later].sum() / w[ctrl].sum()),
            "share_control_time_after_start": float(
                (w[cut] * (fr.loc[cut, "time_days"] - after[cut])).sum()
                / (w[ctrl] * fr.loc[ctrl, "time_days"]).sum()),
            "itt_log_hr": loghr(fr), "censored_log_hr": loghr(pp)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ summary


def summarise(reps: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and estimator: mean and true log HR, bias with MC SE, empirical and mean
    model SE, 95% coverage of the truth, rejection rate (p < 0.05)."""
    rows = []
    for scenario, d in reps.groupby("scenario", sort=False):
        truth = float(d["true_log_hr"].mean())
        for est in (*ESTIMATORS, "dose"):
            x = d[f"{est}_log_hr"]
            ok = x.notna()
            if not ok.any():
                continue
            target = 0.0 if est == "dose" else truth
            dd = d[ok]
            se_model = ((dd[f"{est}_upper"] - dd[f"{est}_lower"]) / (2 * 1.959964)).mean()
            covered = (dd[f"{est}_lower"] <= target) & (target <= dd[f"{est}_upper"])
            rows.append({
                "scenario": scenario, "estimator": est, "replicates": int(ok.sum()),
                "not_estimable": int((~ok).sum()), "true_log_hr": target,
                "mean_log_hr": x[ok].mean(), "bias": x[ok].mean() - target,
                "mc_se_bias": x[ok].std(ddof=1) / np.sqrt(ok.sum()),
                "empirical_se": x[ok].std(ddof=1), "mean_model_se": se_model,
                "coverage": covered.mean(), "rejection_rate": (dd[f"{est}_p"] < 0.05).mean()})
    return pd.DataFrame(rows)


def bias_factor(rr_eu: float, rr_ud: float) -> float:
    """Ding & VanderWeele's bounding factor: the most a confounder with these two risk ratios
    can shift a risk ratio."""
    return rr_eu * rr_ud / (rr_eu + rr_ud - 1)


def unmeasured_check(reps: pd.DataFrame, summary: pd.DataFrame) -> dict | None:
    """The E-value statement against the bias the unmeasured confounder actually caused."""
    d = reps[reps["scenario"] == "unmeasured"]
    if d.empty or "u_prev_treated" not in d:
        return None
    p1, p0 = d["u_prev_treated"].mean(), d["u_prev_comparison_weighted"].mean()
    rr_eu = max(p1 / p0, (1 - p1) / (1 - p0))
    hr_u = SCENARIOS["unmeasured"][0]["unmeasured_outcome_hr"]
    rr_ud_rare = max(hr_u, 1 / hr_u)
    rr_ud_common = float(max(_hr_to_rr(hr_u), 1 / _hr_to_rr(hr_u)))
    s = summary.set_index(["scenario", "estimator"]).loc[("unmeasured", PRIMARY)]
    mean_est = float(np.exp(s["mean_log_hr"]))
    truth = float(np.exp(s["true_log_hr"]))
    shift = float(np.exp(abs(s["bias"])))  # estimate / truth (or its inverse), HR scale
    rr_est, rr_true = float(_hr_to_rr(mean_est_hr := float(np.exp(s["mean_log_hr"])))), \
        float(_hr_to_rr(truth))
    shift_common = max(rr_est / rr_true, rr_true / rr_est)  # the same on the RR scale
    ev_mean_rare = evalue(mean_est)["evalue"]
    ev_mean_common = evalue(mean_est, measure="HR", rare=False)["evalue"]
    return {"p_treated": p1, "p_comparison_weighted": p0,
            "p_comparison_crude": d["u_prev_comparison_crude"].mean(), "rr_eu": rr_eu,
            "hr_u": hr_u, "rr_ud_rare": rr_ud_rare, "rr_ud_common": rr_ud_common,
            "bound_rare": bias_factor(rr_eu, rr_ud_rare),
            "bound_common": bias_factor(rr_eu, rr_ud_common), "shift": shift,
            "shift_common": shift_common, "mean_hr_check": mean_est_hr,
            "mean_hr": mean_est, "evalue_mean_rare": ev_mean_rare,
            "evalue_mean_common": ev_mean_common,
            "evalue_reported_median": float(d["evalue"].median()),
            "evalue_reported_q": (float(d["evalue"].quantile(0.1)),
                                  float(d["evalue"].quantile(0.9)))}


def criteria(summary: pd.DataFrame, reps: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """(check, result, met) for the targets of the brief."""
    out = []
    s = summary.set_index(["scenario", "estimator"])
    lo, hi = COVERAGE_TARGET
    for scenario in TARGET_SCENARIOS:
        if (scenario, PRIMARY) not in s.index:
            continue
        r = s.loc[(scenario, PRIMARY)]
        out.append((f"{scenario}: primary abs(bias of log HR) < {BIAS_TARGET}",
                    f"{r['bias']:+.3f} (MC SE {r['mc_se_bias']:.3f})",
                    abs(r["bias"]) < BIAS_TARGET))
        out.append((f"{scenario}: primary 95% CI coverage in [{lo:.0%}, {hi:.0%}]",
                    f"{r['coverage']:.1%}", lo <= r["coverage"] <= hi))
    if ("adherence", "dose") in s.index:
        r = s.loc[("adherence", "dose")]
        out.append((f"adherence: false-positive rate of the dose association per 5 sessions "
                    f"<= {DOSE_FPR_TARGET:.0%}", f"{r['rejection_rate']:.1%} "
                    f"({int(r['replicates'])} replicates)", r["rejection_rate"] <= DOSE_FPR_TARGET))
    if ("null", PRIMARY) in s.index:
        r = s.loc[("null", PRIMARY)]
        half = 1.959964 * np.sqrt(0.05 * 0.95 / r["replicates"])
        out.append((f"null: primary false-positive rate near 5% (binomial 95% range "
                    f"{max(0.0, 0.05 - half):.1%} to {0.05 + half:.1%})",
                    f"{r['rejection_rate']:.1%}",
                    abs(r["rejection_rate"] - 0.05) <= half))
    u = unmeasured_check(reps, summary)
    if u is not None:
        out.append(("unmeasured: the bias is within the Ding-VanderWeele bound of U's actual "
                    "strengths (common-outcome conversion, as the report)",
                    f"shift x{u['shift_common']:.3f} (RR scale) <= bound "
                    f"{u['bound_common']:.3f}", u["shift_common"] <= u["bound_common"]))
        strongest = max(u["rr_eu"], u["rr_ud_common"])
        out.append(("unmeasured: the E-value of the estimate U produced is no larger than U's "
                    "strength (a confounder weaker than E could not have explained it away)",
                    f"E = {u['evalue_mean_common']:.2f} <= max(RR_EU {u['rr_eu']:.2f}, "
                    f"RR_UD {u['rr_ud_common']:.2f})",
                    u["evalue_mean_common"] <= strongest))
    return out


# ------------------------------------------------------------------------ page


def _fmt(x: float, spec: str = ".3f") -> str:
    return "–" if x is None or not np.isfinite(x) else format(x, spec)


def markdown(summary: pd.DataFrame, reps: pd.DataFrame, info: dict) -> str:
    """The results page (docs/trial_simulation.md)."""
    cmd = (f"nice -n 10 .venv/bin/python benchmarks/trial_simulation.py --replicates "
           f"{info['replicates']} --workers {info['workers']}")
    per = reps.groupby("scenario", sort=False)
    counts = per.size()
    c = headline_thinning(headline_config())
    lines = [
        "# Trial simulation: the headline risk-set weighted hazard ratio",
        "",
        "Does the report's primary analysis (`weighted_risk_sets`: everyone who started "
        "treatment, ATT-weighted within the sequential trials' risk sets) recover a known "
        "effect on the report's headline outcome (`config/evaluation.yaml`: first new "
        "stalking/harassment offence, proven, time at liberty)? Generated by "
        "`benchmarks/trial_simulation.py`; `tests/analysis/test_trial_simulation.py` runs "
        "its `--quick` mode. Regenerate this page with",
        "",
        "```sh",
        f"nohup {cmd} &",
        "```",
        "",
        "(`--redraw` rebuilds it from `data/trial_simulation/replicates.jsonl` without running.)",
        "",
        "## Design",
        "",
        f"- {info['people']:,} people per synthetic extract; replicates per scenario as run: "
        + ", ".join(f"`{k}` {v}" for k, v in counts.items())
        + (f" (asked for {info['replicates']})" if info.get("partial") or
           counts.min() < info["replicates"] else "") + ".",
        "- Each extract goes through the pipeline's own cohort SQL (risk sets with sampled "
        "controls, covariates on the index date, outcomes) and estimators; only CSV writing "
        "and ingest are skipped (frames loaded straight into `staging.*`). The configuration "
        "is `config/evaluation.yaml` unchanged except `bootstrap_replicates: 0` (the HR and "
        "its CI use person-clustered robust SEs, not the bootstrap).",
        f"- Primary estimator as of commit `{info.get('estimator_commit', 'unknown')}` of "
        "`pipeline/analysis/risk_set_weighting.py` (the version the worker processes "
        "loaded when the run started)."
        + (f" {info['estimator_note']}" if info.get("estimator_note") else ""),
        "- Scenarios:",
        *[f"  - `{k}`: {v[1]}" for k, v in SCENARIOS.items()],
        "- Estimators: `weighted_risk_sets` (primary, `comparison_results._primary`); "
        "`weighted_risk_sets_calendar` (the same with days in custody counted as time at "
        "risk, i.e. on the calendar scale the truth is defined on); `matched` (risk-set "
        "matching on the propensity logit, 1:1, caliper 0.2 SD; sensitivity analysis); "
        "`naive` (unadjusted); `dose` (the treated-only association per 5 sessions attended "
        "by the 180-day landmark, `treated_only_estimates`, measure `hr_per_5_sessions`; its "
        "truth is 0 since the generator has no dose effect in any scenario).",
        "- Truth (marginal HR in the treated, ATT). The generator's potential outcomes are the "
        "first new offence of *any* kind. New offences are stalking/harassment with "
        "probability 0.60 and proven (convicted or cautioned within the 183-day grace "
        f"period) with a fixed probability, both independent of treatment, so the headline "
        f"events are the offence process thinned by a constant c = {c:.3f}. With the "
        "generator's own draw (common random numbers) each treated person's two potential "
        "first headline events follow: a cumulative baseline intensity H from index to the "
        "untreated first offence becomes H / c untreated and H / (c HR) treated. A Cox model "
        "of the two potential times of every treated person in the primary analysis, censored "
        "at the person's own censoring date, gives the replicate's true log HR; the "
        "scenario's truth is the mean over replicates. Because the marginal HR is not "
        "collapsible, it differs from the any-offence truth of docs/simulation_study.md (both "
        "are shown below). Custody is not in this truth: offences are not committed in "
        "custody and the headline time scale is time at liberty; "
        "`weighted_risk_sets_calendar` shows how much that moves the estimate.",
        "",
        "## Results",
        "",
        "Log hazard ratios. Bias: mean estimate minus the truth (Monte Carlo SE). Empirical "
        "SE: SD of the estimates; model SE: mean SE implied by the 95% CIs. Coverage: share "
        "of 95% CIs containing the truth. Rejection: share with p < 0.05 (power where the "
        "truth is not 0, false-positive rate where it is).",
        "",
        "| scenario | estimator | reps | true log HR | mean log HR | bias (MC SE) | "
        "empirical SE | mean model SE | coverage | rejection |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        ne = f" ({r.not_estimable} n/e)" if r.not_estimable else ""
        lines.append(
            f"| {r.scenario} | {r.estimator} | {r.replicates}{ne} | {r.true_log_hr:.3f} | "
            f"{r.mean_log_hr:.3f} | {r.bias:+.3f} ({r.mc_se_bias:.3f}) | "
            f"{r.empirical_se:.3f} | {r.mean_model_se:.3f} | {100 * r.coverage:.1f}% | "
            f"{100 * r.rejection_rate:.1f}% |")
    failed = info.get("failed")
    if failed is not None and len(failed):
        why = failed["error"].str.split(" [(]", regex=True).str[0]
        lines += ["", "Replicates left out of the table because an estimator failed (the "
                  "pipeline's primary analysis reports them as not estimable, "
                  "`model_not_fitted`): " + "; ".join(
                      f"`{sc}` {len(g)} of {len(g) + int((reps['scenario'] == sc).sum())} "
                      f"({'; '.join(sorted(set(why[g.index])))})"
                      for sc, g in failed.groupby("scenario")) + "."]
    lines += ["", "Per scenario (means over replicates):", "",
              "| scenario | treated | treated in primary (≥ 1 control) | headline events "
              "in treated | matched | true log HR headline | true log HR any offence | "
              "seconds / replicate |", "|---|---|---|---|---|---|---|---|"]
    for name, d in per:
        lines.append(
            f"| {name} | {d['n_treated'].mean():.0f} | {d['n_trials'].mean():.0f} | "
            f"{d['events_treated'].mean():.0f} | "
            f"{_fmt(d['n_matched'].mean() if 'n_matched' in d else np.nan, '.0f')} | "
            f"{d['true_log_hr'].mean():.3f} | {d['true_log_hr_any'].mean():.3f} | "
            f"{d['seconds'].mean():.1f} |")
    lines += ["", "## Targets", "", "| check | result | met |", "|---|---|---|"]
    for check, value, ok in criteria(summary, reps):
        lines.append(f"| {check} | {value} | {'yes' if ok else 'NO'} |")
    u = unmeasured_check(reps, summary)
    if u is not None:
        lines += [
            "", "## Unmeasured confounder and the E-value", "",
            f"In `unmeasured` the truth is no effect. U (prevalence 40%, never in the "
            f"extract) raises the odds of referral threefold and multiplies the offending "
            f"hazard by {u['hr_u']}. Among the primary analysis's treated "
            f"{u['p_treated']:.1%} have U; among its weighted comparison arm "
            f"{u['p_comparison_weighted']:.1%} (crude comparison units "
            f"{u['p_comparison_crude']:.1%}): after weighting on the measured covariates "
            f"U's association with treatment is RR_EU = {u['rr_eu']:.2f}. Its association "
            f"with the outcome is HR {u['hr_u']} (RR_UD = {u['rr_ud_rare']:.2f} taken as "
            f"a risk ratio, {u['rr_ud_common']:.2f} after the common-outcome conversion the "
            f"report applies). The mean estimate is HR {u['mean_hr']:.3f}, a shift of "
            f"x{u['shift']:.3f} from the truth (x{u['shift_common']:.3f} after the "
            f"common-outcome conversion); the Ding-VanderWeele bound of a confounder "
            f"of U's strengths is {u['bound_common']:.3f} (common-outcome scale; "
            f"{u['bound_rare']:.3f} with the HR as RR).",
            "",
            f"The report's sentence: an unmeasured confounder would need a risk ratio of "
            f"E with both treatment and reoffending to explain the estimate away. For the "
            f"mean estimate E = {u['evalue_mean_common']:.2f} (common-outcome conversion; "
            f"{u['evalue_mean_rare']:.2f} with the HR as RR); the per-replicate E-values the "
            f"primary analysis reported had median {u['evalue_reported_median']:.2f} "
            f"(10th-90th percentile {u['evalue_reported_q'][0]:.2f}-"
            f"{u['evalue_reported_q'][1]:.2f}). U, which did produce the whole estimate, "
            f"has max(RR_EU, RR_UD) = {max(u['rr_eu'], u['rr_ud_common']):.2f}"
            + (" ≥ E: the statement is consistent with the bias seen." if
               u["evalue_mean_common"] <= max(u["rr_eu"], u["rr_ud_common"]) else
               " < E: the statement would have ruled out a confounder that did explain "
               "the estimate away."),
        ]
    lines += ["", f"Wall time {info['seconds'] / 60:.1f} min with {info['workers']} worker "
              f"processes on a shared 2-core machine (nice 10); {reps['seconds'].mean():.1f} s "
              "per replicate per process.", ""]
    lines += notes(summary, reps)
    return "\n".join(lines)


def _pooled(s: pd.DataFrame, est: str) -> float:
    """Replicate-weighted mean bias over the scenarios without an unmeasured confounder."""
    keys = [(sc, est) for sc in ("null", "effect", "delayed", "adherence", "small")
            if (sc, est) in s.index]
    if not keys:
        return np.nan
    r = s.loc[keys]
    return float(np.average(r["bias"], weights=r["replicates"]))


def notes(summary: pd.DataFrame, reps: pd.DataFrame) -> list[str]:
    """What the table says, with its numbers (the Notes section of the page)."""
    s = summary.set_index(["scenario", "estimator"])

    def get(scenario: str, est: str, col: str) -> float:
        return float(s.loc[(scenario, est), col]) if (scenario, est) in s.index else np.nan

    per = reps.groupby("scenario")
    shift = {sc: get(sc, PRIMARY, "mean_log_hr") - get(sc, "weighted_risk_sets_calendar",
                                                        "mean_log_hr") for sc in SCENARIOS}
    any_gap = (per["true_log_hr"].mean() - per["true_log_hr_any"].mean())
    dose_ne = {sc: int(get(sc, "dose", "not_estimable")) if (sc, "dose") in s.index
               else int(per.size().get(sc, 0)) for sc in SCENARIOS}
    out = [
        "## Notes", "",
        "- Referral delay. The generator already refers people a Gamma(2, 30)-day delay after "
        "the qualifying offence (mean 60 days), decides 7-35 days later and holds the first "
        "session 7-42 days after that, so the index date is typically 3-4 months after the "
        "offence, never at it. `delayed` stretches the referral delay to Gamma(1.5, 100) "
        "(mean 150 days, long right tail): people treated late spend their first months "
        "as eligible controls in earlier trials (until their referral), fewer starters fall "
        "inside the 365-day qualifying window (treated per extract "
        f"{per['n_treated'].mean().get('delayed', np.nan):.0f} against "
        f"{per['n_treated'].mean().get('effect', np.nan):.0f} in `effect`), and the "
        "Weibull hazard (shape 0.7, falling with time since the offence) is lower at a later "
        "index; the risk sets' matching on time since the qualifying offence absorbs this.",
        "- Truth and time scale. The truth is extended to the headline outcome by thinning "
        "the generator's potential offence times with common random numbers (Design). The "
        "headline truth differs from the any-offence truth of the same treated people by "
        + ", ".join(f"{sc} {v:+.3f}" for sc, v in any_gap.items() if np.isfinite(v))
        + " on the log scale (0 under the null). The time-at-liberty estimate minus the "
        "calendar-time estimate of the same weighted analysis: "
        + ", ".join(f"{sc} {v:+.3f}" for sc, v in shift.items() if np.isfinite(v))
        + f"; at most {max(abs(v) for v in shift.values() if np.isfinite(v)):.3f}, so the "
        "time scale the truth ignores is not where any bias below comes from.",
        "- Intention to treat. The primary analysis lets a comparison person who starts "
        "treatment later keep their arm (the per-protocol contrast is a separate analysis); "
        "the truth compares starting with never starting. `--itt-check 6` (6 replicates "
        "each, the study's seeds, calendar scale) measured how far apart they are: in "
        "`effect` 4.4% of the weighted comparison arm starts treatment later and 3.8% of its "
        "follow-up lies after that start; censoring those rows at their start moves the "
        "log HR by -0.006 on average; in `delayed` 8.5%, 6.9% and -0.009. The "
        "intention-to-treat estimand is thus about 0.01 closer to the null than the truth "
        "used here: a small, known part of the bias in the table.",
        "- Direction of the primary's bias. In the five scenarios without an unmeasured "
        "confounder the primary's bias is "
        + ", ".join(f"{sc} {get(sc, PRIMARY, 'bias'):+.3f}" for sc in
                    ("null", "effect", "delayed", "adherence", "small")
                    if (sc, PRIMARY) in s.index)
        + " (pooled " + _fmt(_pooled(s, PRIMARY), "+.3f") + ")"
        + (", always towards harm, the direction of the naive estimate's confounding"
           if all(get(sc, PRIMARY, "bias") > 0 for sc in ("null", "effect", "delayed",
                                                          "adherence", "small")
                  if (sc, PRIMARY) in s.index) else "")
        + "; the matched sensitivity analysis "
        "(same covariates, a logistic score, 1:1 within caliper) gives "
        + ", ".join(f"{sc} {get(sc, 'matched', 'bias'):+.3f}" for sc in
                    ("null", "effect", "delayed", "adherence", "small")
                    if (sc, "matched") in s.index)
        + " (pooled " + _fmt(_pooled(s, "matched"), "+.3f") + ") with larger SEs. About "
        "0.01 is the intention-to-treat gap (note above). The rest looks like residual "
        "confounding: the generator refers on prior stalking/harassment offences capped at 3 "
        "and on any prior violence, while the score takes the counts linearly, and weighting "
        "every eligible control leans on the score further out than a calipered match does. "
        "That explanation is not verified here; running the scenario `null` with "
        "`confounding = 0` (bias expected to vanish) or with the score given the generator's "
        "terms would test it.",
        "- Standard errors. Under the null scenarios the primary analysis's person-clustered "
        f"robust SE (mean {get('null', PRIMARY, 'mean_model_se'):.3f}) is larger than the "
        f"SD of its estimates ({get('null', PRIMARY, 'empirical_se'):.3f}), so its coverage "
        "is above 95% and its false-positive rate below 5% (conservative); under the effect "
        f"the two are closer ({get('effect', PRIMARY, 'mean_model_se'):.3f} vs "
        f"{get('effect', PRIMARY, 'empirical_se'):.3f}). docs/simulation_study.md saw the "
        "same pattern for the older estimators: treated and controls are drawn in step "
        "(same sites, dates and time since the offence), which removes between-extract "
        "variability that a sandwich of independent people counts, and the weights are "
        "taken as known.",
        "- Dose. The generator has no dose effect in any scenario; in `adherence` completion "
        "(hence sessions attended by the landmark) falls steeply with the latent risk that "
        "also drives reoffending. The treated-only model adjusts for the index-date "
        "covariates and the clinic assessment (risk rating, personality disorder, psychosis, "
        "substance misuse), which together carry nearly all of that latent risk (the "
        "generator's latent risk is made of these and the police covariates only): its "
        f"false-positive rate is {get('adherence', 'dose', 'rejection_rate'):.1%} "
        f"(target {DOSE_FPR_TARGET:.0%}; binomial MC SE "
        f"{np.sqrt(0.05 * 0.95 / max(get('adherence', 'dose', 'replicates'), 1)):.1%} "
        "around 5%) with mean log HR per 5 sessions "
        f"{get('adherence', 'dose', 'mean_log_hr'):+.3f} (MC SE "
        f"{get('adherence', 'dose', 'mc_se_bias'):.3f}) and model SE "
        f"{get('adherence', 'dose', 'mean_model_se'):.3f} against empirical "
        f"{get('adherence', 'dose', 'empirical_se'):.3f}. Where it exceeds 5% the reasons "
        "are the ones visible in those numbers: the residual confounding left in the mean "
        "(the risk rating is a three-level cut of the latent risk, prior offending enters "
        "linearly) and a robust SE on ~50 events below the spread of the estimates. If "
        "adherence depended on something the assessment does not record, the association "
        "would be confounded more; the report prints it as an association, not an effect. "
        "With ~80 treated (`small`) the "
        "adjusted dose model could not be fitted in "
        f"{dose_ne.get('small', 0)} of {int(per.size().get('small', 0))} replicates "
        "(about 55 people reach the landmark; the pipeline reports `model_not_fitted`).",
        "- Not checked here: the matched and naive estimators have no targets; the naive "
        "estimate is biased towards harm as in docs/simulation_study.md. The bootstrap "
        "(`bootstrap_replicates`) is off: the KM bands and RMST it serves are not studied.",
        "",
    ]
    return out


# ------------------------------------------------------------------------ run


def _job(job: tuple[str, int, int]) -> dict:
    try:
        return replicate(*job)
    except Exception as exc:
        return {"scenario": job[0], "replicate": job[1], "error": f"{type(exc).__name__}: "
                f"{exc}"[:300]}


def estimator_commit() -> str:
    """The last commit of the primary estimator's module (``+`` when the working copy
    differs), so that the page says which version of the estimator its table describes."""
    import subprocess

    path = "pipeline/analysis/risk_set_weighting.py"
    try:
        h = subprocess.run(["git", "log", "-1", "--format=%h", "--", path], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", path], cwd=ROOT,
                               check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return h + ("+" if dirty else "")


def write_page(reps: pd.DataFrame, info: dict, docs: Path, out: Path) -> pd.DataFrame:
    good = reps[reps["error"].isna()] if "error" in reps else reps
    summary = summarise(good)
    summary.to_csv(out / "summary.csv", index=False)
    reps.to_csv(out / "replicates.csv", index=False)
    failed = reps.loc[reps["error"].notna(), ["scenario", "error"]] if "error" in reps \
        else pd.DataFrame(columns=["scenario", "error"])
    docs.write_text(markdown(summary, good, dict(info, failed=failed)))
    return summary


def run(args: argparse.Namespace) -> tuple[pd.DataFrame, dict]:
    from concurrent.futures import ProcessPoolExecutor, as_completed

    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "replicates.jsonl"
    if jsonl.exists() and not args.resume:
        jsonl.unlink()
    done = set()
    if args.resume and jsonl.exists():
        prev = _read(jsonl)
        done = set(zip(prev["scenario"], prev["replicate"], strict=True))
    # round robin over scenarios: a stop leaves every scenario with about as many replicates
    jobs = [(s, i, args.people) for i in range(args.replicates) for s in args.scenarios
            if (s, i) not in done]
    info = {"replicates": args.replicates, "people": args.people, "workers": args.workers,
            "seconds": 0.0, "estimator_commit": estimator_commit()}
    t0 = time.perf_counter()
    rows: list[dict] = []

    def record(row: dict, k: int) -> None:
        rows.append(row)
        clean = {k: (None if isinstance(v, float) and not np.isfinite(v) else
                     v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        with jsonl.open("a") as fh:
            fh.write(json.dumps(clean) + "\n")
        if k % args.redraw_every == 0:
            _redraw(args, info, t0)

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            futures = [pool.submit(_job, j) for j in jobs]
            for k, f in enumerate(as_completed(futures), 1):
                record(f.result(), k)
    else:
        for k, j in enumerate(jobs, 1):
            record(_job(j), k)
    info["seconds"] = time.perf_counter() - t0 + (args.previous_seconds or 0.0)
    (args.out / "run.json").write_text(json.dumps(info))
    return _read(jsonl), info


def _read(path: Path) -> pd.DataFrame:
    """The replicates appended so far (one JSON object a line; columns differ by scenario)."""
    df = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines() if line])
    for col in ("error", "matched_error"):
        if col not in df:
            df[col] = np.nan
    return df


def _redraw(args: argparse.Namespace, info: dict, t0: float) -> None:
    reps = _read(args.out / "replicates.jsonl")
    partial = dict(info, seconds=time.perf_counter() - t0, partial=True)
    (args.out / "run.json").write_text(json.dumps(partial))
    try:
        write_page(reps, partial, args.docs, args.out)
    except Exception as exc:
        print(f"page not drawn yet: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=300)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "trial_simulation.md")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "trial_simulation")
    parser.add_argument("--redraw", action="store_true",
                        help="rebuild the page from the last run's files in --out (no run)")
    parser.add_argument("--resume", action="store_true",
                        help="keep replicates.csv and run only the missing replicates")
    parser.add_argument("--redraw-every", type=int, default=30)
    parser.add_argument("--itt-check", type=int, default=0, metavar="N",
                        help="only print the intention-to-treat check on N replicates of "
                        "`effect` and `delayed` (see itt_check)")
    parser.add_argument("--quick", action="store_true",
                        help="1 replicate of 1,500 people per scenario, one process")
    args = parser.parse_args(argv)
    args.previous_seconds = 0.0
    if args.itt_check:
        d = pd.concat([itt_check(sc, args.itt_check, args.people)
                       for sc in ("effect", "delayed")])
        d["difference"] = d["itt_log_hr"] - d["censored_log_hr"]
        print(d.to_string(index=False))
        print(d.groupby("scenario").mean(numeric_only=True).round(3).to_string())
        return 0
    if args.quick:
        args.replicates, args.people, args.workers = 1, 1500, 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.redraw:
        reps = _read(args.out / "replicates.jsonl")
        info = json.loads((args.out / "run.json").read_text())
    else:
        reps, info = run(args)
    args.docs.parent.mkdir(parents=True, exist_ok=True)
    summary = write_page(reps, info, args.docs, args.out)
    print(summary.to_string(index=False))
    print(f"{len(reps)} replicates in {info['seconds'] / 60:.1f} min; page {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
