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
from pipeline.synth.params import SynthParams

DAY0 = np.datetime64("1970-01-01", "D")


@dataclass
class SyntheticExtract:
    """The four extract tables plus the ground truth that must never enter the landing folder."""

    persons: pd.DataFrame
    offences: pd.DataFrame
    referrals: pd.DataFrame
    sessions: pd.DataFrame
    truth_persons: pd.DataFrame
    truth: dict


def _days(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - DAY0).astype(int))


def _to_date(days: np.ndarray) -> np.ndarray:
    """Integer days since 1970 → datetime64[D] (NaN-safe via masked NaT)."""
    out = np.full(days.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnan(days)
    out[ok] = DAY0 + days[ok].astype(np.int64)
    return out


def _chars_to_keys(prefix: str, body: np.ndarray) -> np.ndarray:
    """Keys from a (n, width) array of single characters, prefixed (vectorised, no loops)."""
    n, width = body.shape
    chars = np.empty((n, len(prefix) + width), dtype="<U1")
    chars[:, : len(prefix)] = list(prefix)
    chars[:, len(prefix):] = body
    return chars.view(f"<U{len(prefix) + width}").ravel().astype(object)


HEX = np.array(list("0123456789ABCDEF"))


def _hex_keys(rng: np.random.Generator, prefix: str, n: int) -> np.ndarray:
    """Unique pseudonymised-looking keys: prefix + 16 upper-case hex digits."""
    vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    while not pd.Index(vals).is_unique:  # collisions are astronomically rare; redraw if any
        vals = rng.integers(0, 2**63 - 1, size=n, dtype=np.int64)
    nibbles = (vals[:, None] >> (4 * np.arange(15, -1, -1))) & 15
    return _chars_to_keys(prefix, HEX[nibbles])


def _seq_keys(prefix: str, n: int, width: int, start: int = 1) -> np.ndarray:
    """Sequential keys: prefix + zero-padded number."""
    nums = np.arange(start, start + n, dtype=np.int64)
    digits = (nums[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10
    return _chars_to_keys(prefix, HEX[digits])


def _choice(rng: np.random.Generator, values, probs, n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs)]


def _weibull_cum(t: np.ndarray, shape: float) -> np.ndarray:
    return np.power(np.maximum(t, 0.0), shape)


def _weibull_inv(h: np.ndarray, shape: float) -> np.ndarray:
    return np.power(np.maximum(h, 0.0), 1.0 / shape)


def generate(params: SynthParams) -> SyntheticExtract:
    """Draw one synthetic extract (all four tables) and its ground truth from ``params``."""
    rng = np.random.default_rng(params.seed)
    n = params.n_people
    k = params.weibull_shape
    t_end = _days(params.extraction_date)
    q0 = _days(params.first_qualifying)

    # --- people and their qualifying offence -------------------------------------------------
    person_key = _hex_keys(rng, "PK", n)
    male = rng.random(n) < params.male_share
    site = _choice(rng, P.ALL_SITES, params.site_probs, n)
    q = rng.integers(q0, t_end - 60, size=n).astype(float)  # qualifying offence day
    age_q = np.clip(rng.normal(params.age_mean, params.age_sd, n), 16, 80)
    birth_day = q - age_q * 365.25
    birth_year = _to_date(birth_day).astype("datetime64[Y]").astype(int) + 1970
    ethnicity = _choice(rng, P.ETHNICITY, P.ETHNICITY_PROBS, n)
    relationship = _choice(rng, P.RELATIONSHIPS, P.RELATIONSHIP_PROBS, n)
    ex_partner = relationship == "ex_partner"
    victim0 = _hex_keys(rng, "VK", n)

    # latent clinical traits (affect offending, not referral)
    pd_ = rng.random(n) < 0.35
    sm = rng.random(n) < 0.30
    psy = rng.random(n) < 0.10
    srp = _choice(rng, P.SRP_TYPES, P.SRP_PROBS, n)

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
    prior_outcome = _choice(rng, P.OUTCOMES, P.OUTCOME_PROBS, len(prior_person))
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
    # calibrate the intensity scale so that the untreated one-year risk from ~3 months is as asked
    window = _weibull_cum(np.array([90.0 + 365.0]), k) - _weibull_cum(np.array([90.0]), k)
    lo, hi = 1e-8, 10.0
    for _ in range(60):  # bisection on a scalar: vectorised over people inside
        mid = np.sqrt(lo * hi)
        risk = 1 - np.exp(-mid * np.exp(lp) * window).mean()
        lo, hi = (mid, hi) if risk < params.untreated_one_year_risk else (lo, mid)
    scale = np.sqrt(lo * hi)
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
    ref_day = q + np.round(rng.gamma(2.0, 30.0, n))
    referred = clinic_site & (rng.random(n) < p_ref) & (ref_day < np.minimum(death_day,
                                                                             t_end - 14))
    decision = _choice(rng, ("accepted", "declined", "not_suitable"), (0.8, 0.12, 0.08), n)
    dec_day = ref_day + rng.integers(7, 36, n)
    pending = referred & (dec_day > t_end)
    decision = np.where(pending, "pending", decision)
    accepted = referred & (decision == "accepted")
    first_session = dec_day + rng.integers(7, 43, n)
    starts = accepted & (rng.random(n) < 0.85) & (first_session < np.minimum(death_day, t_end))
    completes = starts & (rng.random(n) < 0.6)
    n_sessions = np.where(completes, P.PLANNED_SESSIONS,
                          rng.integers(1, P.PLANNED_SESSIONS, n)) * starts
    t_idx = np.where(starts, first_session - q, np.inf)  # index in days since q
    hr = np.where(completes & (params.completer_hr is not None),
                  params.completer_hr or params.true_hr, params.true_hr)
    mult = np.where(starts, hr, 1.0)

    # --- offending: NHPP, pre-index by Poisson counts, first post-index by inversion ----------
    tt = last_day - q  # days at risk from q
    pre_end = np.minimum(tt, t_idx)
    lam_pre = rate * _weibull_cum(pre_end, k)
    n_pre = rng.poisson(lam_pre)
    pre_p = np.repeat(np.arange(n), n_pre)
    pre_t = _weibull_inv(rng.random(len(pre_p)) * lam_pre[pre_p] / rate[pre_p], k)
    # treated: first event after index from a shared Exp(1) (potential outcomes use the same draw)
    e1 = rng.exponential(1.0, n)
    t_i = np.where(starts, t_idx, 0.0)
    base_i = _weibull_cum(t_i, k)
    first_tr = _weibull_inv(base_i + e1 / (rate * mult), k) - t_i
    first_ct = _weibull_inv(base_i + e1 / rate, k) - t_i
    post_first = t_i + first_tr
    has_first = starts & (post_first <= tt)
    lam_post = np.where(has_first, rate * mult * (_weibull_cum(tt, k)
                                                  - _weibull_cum(post_first, k)), 0.0)
    n_post = rng.poisson(lam_post)
    post_p = np.repeat(np.arange(n), n_post)
    h0 = _weibull_cum(post_first[post_p], k)
    post_t = _weibull_inv(h0 + rng.random(len(post_p)) * lam_post[post_p]
                          / (rate[post_p] * mult[post_p]), k)
    fp = np.flatnonzero(has_first)
    new_person = np.concatenate([pre_p, fp, post_p])
    new_day = q[new_person] + np.floor(np.concatenate([pre_t, post_first[fp], post_t]))
    m = len(new_person)
    new_family = _choice(rng, list(P.FAMILY_PROBS), list(P.FAMILY_PROBS.values()), m)

    # --- assemble all offence records (prior, qualifying, new) --------------------------------
    off_person = np.concatenate([prior_person, np.arange(n), new_person])
    off_day = np.concatenate([prior_day, q, new_day])
    off_family = np.concatenate([prior_family, np.full(n, "stalking_harassment", dtype=object),
                                 new_family])
    kind = np.concatenate([np.zeros(len(prior_person), int), np.ones(n, int), np.full(m, 2)])
    n_off = len(off_person)
    offence_code = pd.Series(off_family).map(P.FAMILY_CODE).to_numpy(dtype=object)
    sh = off_family == "stalking_harassment"
    sh_codes = _choice(rng, P.SH_CODES, P.SH_CODE_PROBS, n_off)
    # respect each code's validity window: s2A/s4A from 25 Nov 2012, SPO breach from 20 Jan 2020
    s2a_ok = off_day >= _days(dt.date(2012, 11, 25))
    spo_ok = off_day >= _days(dt.date(2020, 1, 20))
    sh_codes = np.where(np.isin(sh_codes, ("S2A", "S4A")) & ~s2a_ok, "S2", sh_codes)
    sh_codes = np.where((sh_codes == "SPOB") & ~spo_ok, "S4", sh_codes)
    sh_codes = np.where((kind == 1) & (sh_codes == "SPOB"), "S2A", sh_codes)
    offence_code = np.where(sh, sh_codes, offence_code)

    same_victim = (kind == 2) & sh & (rng.random(n_off) < 0.6)
    victim = _hex_keys(rng, "VK", n_off)
    victim = np.where(kind == 1, victim0[off_person], victim)
    victim = np.where(same_victim, victim0[off_person], victim)
    victimless = (off_family == "other") & (rng.random(n_off) < 0.5)
    victim = np.where(victimless, None, victim)
    rel = _choice(rng, P.RELATIONSHIPS, P.RELATIONSHIP_PROBS, n_off)
    rel = np.where((kind == 1) | same_victim, relationship[off_person], rel)
    rel = np.where(victimless, "none", rel)

    recorded_day = np.minimum(off_day + rng.geometric(0.25, n_off) - 1, t_end)
    outcome = _choice(rng, P.OUTCOMES, P.OUTCOME_PROBS, n_off)
    outcome[: len(prior_person)] = prior_outcome  # priors keep the outcomes used for the risk
    lag_mean = pd.Series(outcome).map(P.OUTCOME_LAG_MEAN_DAYS).to_numpy(dtype=float)
    out_day = recorded_day + np.round(rng.gamma(2.0, lag_mean / 2.0))
    late = out_day > t_end
    outcome = np.where(late & np.isin(outcome, ("convicted", "acquitted")), "charged", outcome)
    outcome = np.where(late & np.isin(outcome, ("cautioned", "nfa")), "pending", outcome)
    out_day = np.where(late, np.nan, out_day)
    convicted = outcome == "convicted"
    cust = params.custody_share_of_convictions
    disposal = _choice(rng, P.DISPOSALS,
                       (cust, *(np.array([0.4, 0.25, 0.15]) / 0.8 * (1 - cust))), n_off)
    disposal = np.where(convicted, disposal, None)
    custody = disposal == "custody"
    release = np.where(custody, out_day + rng.integers(90, 541, n_off), np.nan)
    release = np.where(release > t_end, np.nan, release)  # still in custody at extraction

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

    # kept offences in date order (ties in generation order), keys numbered in that order
    order = np.lexsort((np.arange(n_off), off_day))
    o = order[keep[order]]
    offences_df = pd.DataFrame({
        "offence_key": _seq_keys("OF", len(o), 10), "person_key": person_key[off_person[o]],
        "victim_key": victim[o], "offence_date": _to_date(off_day[o]),
        "recorded_date": _to_date(recorded_day[o].astype(float)),
        "offence_code": offence_code[o], "victim_relationship": rel[o], "outcome": outcome[o],
        "outcome_date": _to_date(out_day[o]), "disposal": disposal[o],
        "custody_release_date": _to_date(release[o])})

    persons_df = pd.DataFrame({
        "person_key": person_key, "birth_year": birth_year.astype(int),
        "sex": np.where(male, "M", "F"), "ethnicity_group": ethnicity, "site": site,
        "date_of_death": _to_date(np.where(died, np.floor(death_day), np.nan))})

    referrals_df, sessions_df = _clinic_tables(
        rng, params, referred=referred, decision=decision, ref_day=ref_day, dec_day=dec_day,
        starts=starts, completes=completes, first_session=first_session,
        n_sessions=n_sessions, death_day=death_day, person_key=person_key, srp=srp,
        pd_=pd_, psy=psy, sm=sm, lp=lp, t_end=t_end)

    truth_persons = pd.DataFrame({
        "person_key": person_key, "qualifying_date": _to_date(q), "log_risk": lp,
        "referred": referred, "treated": starts,
        "completed": completes, "index_date": _to_date(np.where(starts, first_session, np.nan)),
        "hazard_multiplier": mult,
        "first_event_days_if_treated": np.where(starts, first_tr, np.nan),
        "first_event_days_if_untreated": np.where(starts, first_ct, np.nan)})
    truth = _truth_summary(params, rate, k, t_idx, starts, mult, n_sessions)
    return SyntheticExtract(persons_df, offences_df, referrals_df, sessions_df, truth_persons,
                            truth)


def _clinic_tables(rng, params, *, referred, decision, ref_day, dec_day, starts, completes,
                   first_session, n_sessions, death_day, person_key, srp, pd_, psy, sm, lp,
                   t_end):
    """Referrals (with assessment and discharge) and their sessions, for referred people."""
    idx = np.flatnonzero(referred)
    r = len(idx)
    ref_key = _seq_keys("RF", r, 8)
    assessed = np.isin(decision[idx], ("accepted", "not_suitable"))
    risk_q = np.quantile(lp, [0.4, 0.8])
    risk = np.where(lp[idx] < risk_q[0], "low", np.where(lp[idx] < risk_q[1], "moderate", "high"))

    # treatment sessions: weekly from the first session; 12% not attended (first always attended)
    st = idx[starts[idx]]
    per = n_sessions[st].astype(int)
    owner = np.repeat(np.arange(len(st)), per)
    seq = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    sess_day = first_session[st][owner] + 7 * seq
    attended = (seq == 0) | (rng.random(len(seq)) > 0.12)
    alive = sess_day < np.minimum(death_day[st][owner], t_end + 1)
    last_sess = pd.Series(sess_day).groupby(owner).max().reindex(range(len(st))).to_numpy()
    # assessment session a few days before the decision for assessed referrals
    asd = idx[assessed]
    a_day = dec_day[asd] - rng.integers(1, 7, len(asd))
    st_pos = np.searchsorted(idx, st)  # idx is sorted: positions of people in the referral rows
    as_pos = np.searchsorted(idx, asd)
    s_ref = np.concatenate([as_pos, st_pos[owner[alive]]])
    s_day = np.concatenate([a_day, sess_day[alive]]).astype(float)
    s_type = np.concatenate([np.full(len(asd), "assessment", dtype=object),
                             np.full(alive.sum(), "treatment", dtype=object)])
    s_att = np.concatenate([np.ones(len(asd), bool), attended[alive]])
    order = np.lexsort((s_ref, s_day))  # by date, then referral; stable
    order = order[s_day[order] <= t_end]
    sessions = pd.DataFrame({
        "session_key": _seq_keys("SE", len(order), 10), "referral_key": ref_key[s_ref[order]],
        "session_date": _to_date(s_day[order]), "session_type": s_type[order],
        "attended": s_att[order]})

    # discharge
    dis_day = np.full(r, np.nan)
    reason = np.full(r, None, dtype=object)
    pos_st = st_pos
    end_day = last_sess + 14
    nc_reason = _choice(rng, ("disengaged", "breached", "moved"), (0.7, 0.15, 0.15), len(st))
    reason[pos_st] = np.where(completes[st], "completed", nc_reason)
    dis_day[pos_st] = end_day
    died_first = death_day[st] < end_day
    reason[pos_st] = np.where(died_first, "died", reason[pos_st])
    dis_day[pos_st] = np.where(died_first, np.floor(death_day[st]), dis_day[pos_st])
    acc_ns = idx[(decision[idx] == "accepted") & ~starts[idx]]
    pos_ns = np.searchsorted(idx, acc_ns)
    reason[pos_ns] = "disengaged"
    dis_day[pos_ns] = dec_day[acc_ns] + 60
    ongoing = (dis_day > t_end) & ~np.isnan(dis_day)
    reason = np.where(ongoing, "ongoing", reason)
    dis_day = np.where(ongoing, np.nan, dis_day)
    referrals = pd.DataFrame({
        "referral_key": ref_key, "person_key": person_key[idx],
        "referral_date": _to_date(ref_day[idx]),
        "referral_source": _choice(rng, ("police", "probation", "court", "nhs", "other"),
                                   (0.45, 0.25, 0.15, 0.10, 0.05), r),
        "decision": decision[idx],
        "decision_date": _to_date(np.where(decision[idx] == "pending", np.nan, dec_day[idx])),
        "srp_type": np.where(assessed, srp[idx], None),
        "risk_rating": np.where(assessed, risk, None),
        "personality_disorder": pd.array(np.where(assessed, pd_[idx], pd.NA), dtype="boolean"),
        "psychosis": pd.array(np.where(assessed, psy[idx], pd.NA), dtype="boolean"),
        "substance_misuse": pd.array(np.where(assessed, sm[idx], pd.NA), dtype="boolean"),
        "discharge_date": _to_date(dis_day), "discharge_reason": reason})
    return referrals, sessions.reset_index(drop=True)


def _truth_summary(params, rate, k, t_idx, starts, mult, n_sessions) -> dict:
    """True effect and the treated people's expected 12/24-month risks under both arms."""
    ti = t_idx[starts]
    out = {"extract_id": params.extract_id, "params": params.as_json(),
           "true_hr": params.true_hr, "completer_hr": params.completer_hr,
           "n_treated": int(starts.sum()), "mean_sessions_treated": float(n_sessions[starts].mean())
           if starts.any() else None}
    for months, days in ((12, 365.0), (24, 730.0)):
        h = rate[starts] * (_weibull_cum(ti + days, k) - _weibull_cum(ti, k))
        r1 = float(1 - np.exp(-h * mult[starts]).mean()) if starts.any() else None
        r0 = float(1 - np.exp(-h).mean()) if starts.any() else None
        out[f"att_risk_treated_{months}m"] = r1
        out[f"att_risk_untreated_{months}m"] = r0
        out[f"att_risk_difference_{months}m"] = None if r1 is None else r1 - r0
    return out
