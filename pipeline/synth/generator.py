"""Vectorised generator of synthetic police and clinic extracts with a known treatment effect.

People are drawn with observed covariates (police data) and latent clinical traits; referral depends
on the observed covariates only (confounding the naive comparison but identifiable by adjustment);
offending is a non-homogeneous Poisson process with a Weibull-shaped intensity from the qualifying
offence, multiplied by the true hazard ratio after the first attended treatment session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.synth import params as P
from pipeline.synth.clinic import clinic_tables, truth_summary
from pipeline.synth.draws import (
    choice,
    day_number,
    hex_keys,
    over,
    seq_keys,
    to_date,
    weibull_cum,
    weibull_inv,
)
from pipeline.synth.params import SynthParams


@dataclass
class SyntheticExtract:
    """The four extract tables plus the ground truth that must never enter the landing folder."""

    persons: pd.DataFrame
    offences: pd.DataFrame
    referrals: pd.DataFrame
    sessions: pd.DataFrame
    truth_persons: pd.DataFrame
    truth: dict


def _referable(params: SynthParams, male: np.ndarray, prior_violence: np.ndarray) -> np.ndarray:
    """Who may be referred at all: everyone, or only men / only people with prior violence."""
    ok = np.ones(len(male), bool)
    if params.referral_sex is not None:
        ok &= male == (params.referral_sex == "M")
    if params.referral_requires_prior_violence:
        ok &= prior_violence
    return ok


def _admitted(params: SynthParams, q, first_session, birth_year, death_day, t_end) -> np.ndarray:
    """Whether a starter's first session passes the main cohort's rules of the default config
    (index in the study window, qualifying offence within the lookback, adult, alive); custody
    on the index date is removed separately for the starters kept by ``n_treated``."""
    index_year = to_date(first_session).astype("datetime64[Y]").astype(int) + 1970
    return ((first_session >= day_number(params.study_first_index))
            & (first_session <= t_end - params.grace_days - 30)
            & (first_session - q <= params.qualifying_lookback_days)
            & (index_year - birth_year >= params.min_age)
            & (np.floor(death_day) > first_session))


def _singletons(srp: np.ndarray, relationship: np.ndarray, one: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Make 'predatory' and 'professional' levels of size one: person ``one`` has both."""
    srp = np.where(srp == "predatory", "rejected", srp)
    relationship = np.where(relationship == "professional", "acquaintance", relationship)
    srp[one] = "predatory"
    relationship[one] = "professional"
    return srp, relationship


def generate(params: SynthParams) -> SyntheticExtract:
    """Draw one synthetic extract (all four tables) and its ground truth from ``params``."""
    rng = np.random.default_rng(params.seed)
    n = params.n_people
    k = params.weibull_shape
    t_end = day_number(params.extraction_date)
    q0 = day_number(params.first_qualifying)

    # --- people and their qualifying offence -------------------------------------------------
    person_key = hex_keys(rng, "PK", n)
    male = rng.random(n) < params.male_share
    site = choice(rng, P.ALL_SITES, params.site_probs, n)
    q = rng.integers(q0, t_end - 60, size=n).astype(float)  # qualifying offence day
    age_q = np.clip(rng.normal(params.age_mean, params.age_sd, n), 16, 80)
    birth_day = q - age_q * 365.25
    birth_year = to_date(birth_day).astype("datetime64[Y]").astype(int) + 1970
    ethnicity = choice(rng, P.ETHNICITY, P.ETHNICITY_PROBS, n)
    relationship = choice(rng, P.RELATIONSHIPS, P.RELATIONSHIP_PROBS, n)
    ex_partner = relationship == "ex_partner"
    victim0 = hex_keys(rng, "VK", n)

    # latent clinical traits (affect offending, not referral)
    pd_ = rng.random(n) < 0.35
    sm = rng.random(n) < 0.30
    psy = rng.random(n) < 0.10
    srp = choice(rng, P.SRP_TYPES, P.SRP_PROBS, n)

    # prior offences (before q): counts by family, heterogeneous
    g = rng.gamma(1.0, 1.0, n)
    n_prior_sh = rng.poisson(params.prior_sh_mean * g)
    n_prior_vi = rng.poisson(0.4 * g)
    n_prior_ot = rng.poisson(0.8 * g)
    prior_person = np.concatenate([np.repeat(np.arange(n), c) for c in (n_prior_sh, n_prior_vi,
                                                                         n_prior_ot)])
    prior_family = np.repeat(np.array(["stalking_harassment", "violence", "other"], dtype=object),
                             [n_prior_sh.sum(), n_prior_vi.sum(), n_prior_ot.sum()])
    prior_day = q[prior_person] - rng.integers(30, 3650, size=len(prior_person))
    # prior stalking/harassment offences predate the study window, so that each person's first
    # qualifying offence of the window is the offence their offending clock starts from
    sh_prior = prior_family == "stalking_harassment"
    latest_sh = q0 - params.qualifying_lookback_days - 1
    prior_day = np.where(sh_prior & (prior_day > latest_sh),
                         latest_sh - rng.integers(0, 2000, size=len(prior_person)), prior_day)
    prior_outcome = choice(rng, P.OUTCOMES, P.OUTCOME_PROBS, len(prior_person))
    prior_sh_conv = np.bincount(
        prior_person[(prior_family == "stalking_harassment") & (prior_outcome == "convicted")],
        minlength=n)
    prior_vi_any = n_prior_vi > 0

    # --- latent risk (log hazard multiplier) --------------------------------------------------
    lp = (np.log(P.RISK_HR["personality_disorder"]) * pd_
          + np.log(P.RISK_HR["substance_misuse"]) * sm
          + np.log(P.RISK_HR["psychosis"]) * psy
          + np.log(P.RISK_HR["prior_sh_conviction"]) * np.minimum(prior_sh_conv, 5)
          + np.log(P.RISK_HR["prior_violence"]) * prior_vi_any
          + np.log(P.RISK_HR["ex_partner"]) * ex_partner
          + np.log(P.RISK_HR["female"]) * ~male
          + np.log(P.RISK_HR["age_per_year"]) * (age_q - 35.0))
    lp_measured = lp  # what the clinic's risk rating sees (never the unmeasured confounder)
    u = np.zeros(n, bool)
    if params.unmeasured_prevalence > 0:  # own stream: every other draw stays as it was
        u = np.random.default_rng([params.seed, 7919]).random(n) < params.unmeasured_prevalence
        lp = lp + np.log(params.unmeasured_outcome_hr) * u
    # calibrate the intensity scale so that the untreated one-year risk from ~3 months is as asked
    window = weibull_cum(np.array([90.0 + 365.0]), k) - weibull_cum(np.array([90.0]), k)
    lo, hi = 1e-8, 10.0
    for _ in range(60):  # bisection on a scalar: vectorised over people inside
        mid = np.sqrt(lo * hi)
        risk = 1 - np.exp(-mid * np.exp(lp) * window).mean()
        lo, hi = (mid, hi) if risk < params.untreated_one_year_risk else (lo, mid)
    scale = np.sqrt(lo * hi) if params.untreated_one_year_risk > 0 else 0.0  # 0: nobody offends
    rate = scale * np.exp(lp)  # cumulative intensity = rate * t^k, t days since q

    # --- death --------------------------------------------------------------------------------
    mort = params.annual_mortality / 365.25 * np.exp(0.07 * (age_q - 35))
    death_day = q + rng.exponential(1.0 / mort)
    died = death_day <= t_end
    last_day = np.minimum(death_day, t_end)  # end of offending window

    # --- referral, decision and treatment -----------------------------------------------------
    clinic_site = np.isin(site, P.SITES_WITH_CLINIC)
    site_eff = pd.Series(site).map({"SITE_A": 0.3, "SITE_B": 0.0, "SITE_C": -0.2,
                                    "SITE_D": 0.1, "SITE_E": 0.0}).to_numpy()
    conf = (0.45 * np.minimum(n_prior_sh, 3) + 0.7 * ex_partner - 0.035 * (age_q - 35)
            + 0.4 * prior_vi_any + site_eff)
    b0 = np.log(params.referral_share / (1 - params.referral_share)) - params.confounding * 0.6
    p_ref = 1 / (1 + np.exp(-(b0 + params.confounding * conf)))
    if params.unmeasured_prevalence > 0:
        p_ref = 1 / (1 + np.exp(-(b0 + params.confounding * conf
                                  + np.log(params.unmeasured_referral_or) * u)))
    ref_day = q + np.round(rng.gamma(params.referral_delay_shape, params.referral_delay_scale,
                                     n))
    forced = np.isin(site, params.treat_all_sites)  # everyone there is referred and starts
    referred = (clinic_site & _referable(params, male, prior_vi_any)
                & ((rng.random(n) < p_ref) | forced)
                & (ref_day < np.minimum(death_day, t_end - 14)))
    decision = choice(rng, ("accepted", "declined", "not_suitable"), (0.8, 0.12, 0.08), n)
    decision = np.where(forced, "accepted", decision)
    dec_day = ref_day + rng.integers(7, 36, n)
    pending = referred & (dec_day > t_end)
    decision = np.where(pending, "pending", decision)
    accepted = referred & (decision == "accepted")
    first_session = dec_day + rng.integers(7, 43, n)
    starts = (accepted & ((rng.random(n) < 0.85) | forced)
              & (first_session < np.minimum(death_day, t_end)))
    admitted = starts & _admitted(params, q, first_session, birth_year, death_day, t_end)
    if params.n_treated is not None:  # keep exactly n_treated starters the cohort admits
        keep = np.flatnonzero(admitted)
        if len(keep) < params.n_treated:
            raise ValueError(f"shape {params.shape!r}: too few eligible starters for n_treated; "
                             "raise n_people or referral_share")
        starts[keep[params.n_treated:]] = False
        admitted[keep[params.n_treated:]] = False
    single = np.flatnonzero(admitted & ~ex_partner)[:1]  # the one member of size-1 subgroups
    if params.singleton_subgroups:
        srp, relationship = _singletons(srp, relationship, single)
    p_complete = params.completion_share
    if params.adherence_risk_log_or != 0 and starts.any():
        z = lp - lp[starts].mean()
        p_complete = 1 / (1 + np.exp(-(np.log(p_complete / (1 - p_complete))
                                       + params.adherence_risk_log_or * z)))
    completes = starts & (rng.random(n) < p_complete)
    n_sessions = np.where(completes, P.PLANNED_SESSIONS,
                          rng.integers(1, P.PLANNED_SESSIONS, n)) * starts
    if params.uniform_sessions is not None:
        n_sessions = np.where(starts, params.uniform_sessions, 0)
    t_idx = np.where(starts, first_session - q, np.inf)  # index in days since q
    hr = np.where(completes & (params.completer_hr is not None),
                  params.completer_hr or params.true_hr, params.true_hr)
    mult = np.where(starts, hr, 1.0)

    # --- offending: NHPP, pre-index by Poisson counts, first post-index by inversion ----------
    tt = last_day - q  # days at risk from q
    pre_end = np.minimum(tt, t_idx)
    lam_pre = rate * weibull_cum(pre_end, k)
    n_pre = rng.poisson(lam_pre)
    pre_p = np.repeat(np.arange(n), n_pre)
    pre_t = weibull_inv(rng.random(len(pre_p)) * lam_pre[pre_p] / rate[pre_p], k)
    # treated: first event after index from a shared Exp(1) (potential outcomes use the same draw)
    e1 = rng.exponential(1.0, n)
    t_i = np.where(starts, t_idx, 0.0)
    base_i = weibull_cum(t_i, k)
    first_tr = weibull_inv(base_i + over(e1, rate * mult), k) - t_i
    first_ct = weibull_inv(base_i + over(e1, rate), k) - t_i
    post_first = t_i + first_tr
    has_first = starts & (post_first <= tt)
    lam_post = np.where(has_first, rate * mult * (
        weibull_cum(tt, k) - weibull_cum(np.minimum(post_first, tt), k)), 0.0)
    n_post = rng.poisson(lam_post)
    post_p = np.repeat(np.arange(n), n_post)
    h0 = weibull_cum(post_first[post_p], k)
    post_t = weibull_inv(h0 + rng.random(len(post_p)) * lam_post[post_p]
                          / (rate[post_p] * mult[post_p]), k)
    fp = np.flatnonzero(has_first)
    new_person = np.concatenate([pre_p, fp, post_p])
    new_day = q[new_person] + np.floor(np.concatenate([pre_t, post_first[fp], post_t]))
    m = len(new_person)
    new_family = choice(rng, list(P.FAMILY_PROBS),
                         list(params.family_probs or P.FAMILY_PROBS.values()), m)
    if params.treated_family_probs is not None:
        after_index = starts[new_person] & (new_day >= q[new_person] + t_idx[new_person])
        new_family = np.where(after_index, choice(rng, list(P.FAMILY_PROBS),
                                                   list(params.treated_family_probs), m),
                              new_family)

    # --- assemble all offence records (prior, qualifying, new) --------------------------------
    off_person = np.concatenate([prior_person, np.arange(n), new_person])
    off_day = np.concatenate([prior_day, q, new_day])
    off_family = np.concatenate([prior_family, np.full(n, "stalking_harassment", dtype=object),
                                 new_family])
    kind = np.concatenate([np.zeros(len(prior_person), int), np.ones(n, int), np.full(m, 2)])
    n_off = len(off_person)
    offence_code = pd.Series(off_family).map(P.FAMILY_CODE).to_numpy(dtype=object)
    sh = off_family == "stalking_harassment"
    sh_codes = choice(rng, P.SH_CODES, P.SH_CODE_PROBS, n_off)
    # respect each code's validity window: s2A/s4A from 25 Nov 2012, SPO breach from 20 Jan 2020
    s2a_ok = off_day >= day_number(dt.date(2012, 11, 25))
    spo_ok = off_day >= day_number(dt.date(2020, 1, 20))
    sh_codes = np.where(np.isin(sh_codes, ("S2A", "S4A")) & ~s2a_ok, "S2", sh_codes)
    sh_codes = np.where((sh_codes == "SPOB") & ~spo_ok, "S4", sh_codes)
    sh_codes = np.where((kind == 1) & (sh_codes == "SPOB"), "S2A", sh_codes)
    offence_code = np.where(sh, sh_codes, offence_code)

    same_victim = (kind == 2) & sh & (rng.random(n_off) < 0.6)
    victim = hex_keys(rng, "VK", n_off)
    victim = np.where(kind == 1, victim0[off_person], victim)
    victim = np.where(same_victim, victim0[off_person], victim)
    victimless = (off_family == "other") & (rng.random(n_off) < 0.5)
    victim = np.where(victimless, None, victim)
    rel = choice(rng, P.RELATIONSHIPS, P.RELATIONSHIP_PROBS, n_off)
    rel = np.where((kind == 1) | same_victim, relationship[off_person], rel)
    rel = np.where(victimless, "none", rel)

    recorded_day = np.minimum(off_day + rng.geometric(0.25, n_off) - 1, t_end)
    outcome = choice(rng, P.OUTCOMES, params.outcome_probs or P.OUTCOME_PROBS, n_off)
    outcome[: len(prior_person)] = prior_outcome  # priors keep the outcomes used for the risk
    lag_mean = pd.Series(outcome).map(P.OUTCOME_LAG_MEAN_DAYS).to_numpy(dtype=float)
    out_day = recorded_day + np.round(rng.gamma(2.0, lag_mean / 2.0))
    late = out_day > t_end
    outcome = np.where(late & np.isin(outcome, ("convicted", "acquitted")), "charged", outcome)
    outcome = np.where(late & np.isin(outcome, ("cautioned", "nfa")), "pending", outcome)
    out_day = np.where(late, np.nan, out_day)
    convicted = outcome == "convicted"
    cust = params.custody_share_of_convictions
    disposal = choice(rng, P.DISPOSALS,
                       (cust, *(np.array([0.4, 0.25, 0.15]) / 0.8 * (1 - cust))), n_off)
    disposal = np.where(convicted, disposal, None)
    custody = disposal == "custody"
    release = np.where(custody, out_day + rng.integers(90, 541, n_off), np.nan)
    release = np.where(release > t_end, np.nan, release)  # still in custody at extraction
    if params.custody_from_first_session:
        start = np.maximum(first_session[off_person] + 1, recorded_day)
        put = (kind == 1) & (start <= t_end)
        outcome = np.where(put, "convicted", outcome)
        out_day = np.where(put, start, out_day)
        disposal = np.where(put, "custody", disposal)
        release = np.where(put, np.nan, release)
    if params.n_treated is not None:  # an admitted starter is at liberty on their index date
        fs = first_session[off_person]
        covers = ((disposal == "custody") & admitted[off_person] & (out_day <= fs)
                  & ~(release < fs))
        disposal = np.where(covers, "community_order", disposal)
        release = np.where(covers, np.nan, release)
    custody = disposal == "custody"

    # thin offences committed while in custody for an earlier offence (no offending inside)
    offences = pd.DataFrame({"p": off_person, "day": off_day, "kind": kind,
                             "cust_start": np.where(custody, out_day, np.nan),
                             "cust_end": np.where(custody, np.where(np.isnan(release), np.inf,
                                                                    release), np.nan)})
    offences["i"] = np.arange(n_off)
    offences = offences.iloc[np.lexsort((offences["i"], offences["day"], offences["p"]))]
    # custody that started before this offence: the latest-ending spell among earlier offences
    started = offences["cust_start"].fillna(np.inf)
    offences["spell_end"] = offences["cust_end"].where(started < offences["day"])
    offences["spell_end"] = offences.groupby("p")["spell_end"].cummax()
    prev_end = offences.groupby("p")["spell_end"].shift(1)
    in_custody = (offences["kind"] == 2) & (prev_end > offences["day"])
    keep = np.ones(n_off, bool)
    keep[offences.loc[in_custody, "i"].to_numpy()] = False
    if params.custody_from_first_session:  # nothing new from the day custody starts
        inside_from = np.full(n, np.inf)
        inside_from[off_person[put]] = start[put]
        keep &= ~((kind == 2) & (off_day >= inside_from[off_person]))
    if params.singleton_subgroups:  # nobody else's offence has a 'professional' victim
        keep_rel = np.isin(off_person, single) | (rel != "professional")
        rel = np.where(keep_rel, rel, "acquaintance")

    # kept offences in date order (ties in generation order), keys numbered in that order
    order = np.lexsort((np.arange(n_off), off_day))
    o = order[keep[order]]
    offences_df = pd.DataFrame({
        "offence_key": seq_keys("OF", len(o), 10), "person_key": person_key[off_person[o]],
        "victim_key": victim[o], "offence_date": to_date(off_day[o]),
        "recorded_date": to_date(recorded_day[o].astype(float)),
        "offence_code": offence_code[o], "victim_relationship": rel[o], "outcome": outcome[o],
        "outcome_date": to_date(out_day[o]), "disposal": disposal[o],
        "custody_release_date": to_date(release[o])})

    persons_df = pd.DataFrame({
        "person_key": person_key, "birth_year": birth_year.astype(int),
        "sex": np.where(male, "M", "F"), "ethnicity_group": ethnicity, "site": site,
        "date_of_death": to_date(np.where(died, np.floor(death_day), np.nan))})

    referrals_df, sessions_df = clinic_tables(
        rng, params, referred=referred, decision=decision, ref_day=ref_day, dec_day=dec_day,
        starts=starts, completes=completes, first_session=first_session,
        n_sessions=n_sessions, death_day=death_day, person_key=person_key, srp=srp,
        pd_=pd_, psy=psy, sm=sm, lp=lp_measured, t_end=t_end)

    truth_persons = pd.DataFrame({
        "person_key": person_key, "qualifying_date": to_date(q), "log_risk": lp,
        "referred": referred, "treated": starts,
        "completed": completes, "index_date": to_date(np.where(starts, first_session, np.nan)),
        "hazard_multiplier": mult,
        "first_event_days_if_treated": np.where(starts, first_tr, np.nan),
        "first_event_days_if_untreated": np.where(starts, first_ct, np.nan)})
    if params.unmeasured_prevalence > 0:
        truth_persons["unmeasured"] = u
    truth = truth_summary(params, rate, k, t_idx, starts, mult, n_sessions)
    return SyntheticExtract(persons_df, offences_df, referrals_df, sessions_df, truth_persons,
                            truth)
