"""Clinic tables (referrals with assessment and discharge, sessions) and the ground truth summary
of a synthetic extract, drawn after the generator has decided who is referred and treated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.synth.draws import choice, seq_keys, to_date, weibull_cum


def clinic_tables(rng, params, *, referred, decision, ref_day, dec_day, starts, completes,
                  first_session, n_sessions, death_day, person_key, srp, pd_, psy, sm, lp,
                  t_end):
    """Referrals (with assessment and discharge) and their sessions, for referred people."""
    idx = np.flatnonzero(referred)
    r = len(idx)
    ref_key = seq_keys("RF", r, 8)
    assessed = np.isin(decision[idx], ("accepted", "not_suitable"))
    risk_q = np.quantile(lp, [0.4, 0.8])
    risk = np.where(lp[idx] < risk_q[0], "low", np.where(lp[idx] < risk_q[1], "moderate", "high"))

    # treatment sessions: weekly from the first session; 12% not attended (first always attended)
    st = idx[starts[idx]]
    per = n_sessions[st].astype(int)
    owner = np.repeat(np.arange(len(st)), per)
    seq = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
    sess_day = first_session[st][owner] + 7 * seq
    attended = (seq == 0) | (rng.random(len(seq)) > params.dna_share)
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
        "session_key": seq_keys("SE", len(order), 10), "referral_key": ref_key[s_ref[order]],
        "session_date": to_date(s_day[order]), "session_type": s_type[order],
        "attended": s_att[order]})

    # discharge
    dis_day = np.full(r, np.nan)
    reason = np.full(r, None, dtype=object)
    pos_st = st_pos
    end_day = last_sess + 14
    nc_reason = choice(rng, ("disengaged", "breached", "moved"), (0.7, 0.15, 0.15), len(st))
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
        "referral_date": to_date(ref_day[idx]),
        "referral_source": choice(rng, ("police", "probation", "court", "nhs", "other"),
                                   (0.45, 0.25, 0.15, 0.10, 0.05), r),
        "decision": decision[idx],
        "decision_date": to_date(np.where(decision[idx] == "pending", np.nan, dec_day[idx])),
        "srp_type": np.where(assessed, srp[idx], None),
        "risk_rating": np.where(assessed, risk, None),
        "personality_disorder": pd.array(np.where(assessed, pd_[idx], pd.NA), dtype="boolean"),
        "psychosis": pd.array(np.where(assessed, psy[idx], pd.NA), dtype="boolean"),
        "substance_misuse": pd.array(np.where(assessed, sm[idx], pd.NA), dtype="boolean"),
        "discharge_date": to_date(dis_day), "discharge_reason": reason})
    return referrals, sessions.reset_index(drop=True)


def truth_summary(params, rate, k, t_idx, starts, mult, n_sessions) -> dict:
    """True effect and the treated people's expected 12/24-month risks under both arms."""
    ti = t_idx[starts]
    out = {"extract_id": params.extract_id, "params": params.as_json(),
           "true_hr": params.true_hr, "completer_hr": params.completer_hr,
           "n_treated": int(starts.sum()), "mean_sessions_treated": float(n_sessions[starts].mean())
           if starts.any() else None}
    for months, days in ((12, 365.0), (24, 730.0)):
        h = rate[starts] * (weibull_cum(ti + days, k) - weibull_cum(ti, k))
        r1 = float(1 - np.exp(-h * mult[starts]).mean()) if starts.any() else None
        r0 = float(1 - np.exp(-h).mean()) if starts.any() else None
        out[f"att_risk_treated_{months}m"] = r1
        out[f"att_risk_untreated_{months}m"] = r0
        out[f"att_risk_difference_{months}m"] = None if r1 is None else r1 - r0
    return out
