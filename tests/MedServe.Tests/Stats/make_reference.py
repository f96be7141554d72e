#!/usr/bin/python3
# Writes reference.json: 20 fixed cases per statistic, computed by scipy 1.10, statsmodels 0.13 and
# scikit-learn 1.2 (Debian's python3-scipy, python3-statsmodels, python3-sklearn). Run by hand when a
# statistic is added; CI only reads the numbers. Inputs are rounded to 2 decimals so both sides read
# the same doubles.
import json
import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import roc_auc_score, average_precision_score, brier_score_loss
from sklearn.calibration import calibration_curve
import statsmodels.api as sm
from statsmodels.stats.proportion import proportions_ztest, proportion_confint
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower


def r(a):
    return [round(float(x), 2) for x in a]


cases = []
for k in range(20):
    rng = np.random.RandomState(1000 + k)
    n1, n2 = int(rng.randint(8, 60)), int(rng.randint(8, 60))
    a = r(rng.normal(0, 1 + k % 3, n1))
    b = r(rng.normal(0.3 * (k % 4), 1.5, n2))
    if k % 5 == 0:  # ties, as clinical values have
        a = [round(x) for x in a]
        b = [round(x) for x in b]
    c = {"k": k}
    trials = [int(rng.randint(50, 5000)), int(rng.randint(50, 5000))]
    successes = [int(rng.randint(1, trials[0])), int(rng.randint(1, trials[1]))]
    z, p = proportions_ztest(successes, trials)
    c["two_proportion_ztest"] = {"in": {"successes": successes, "trials": trials}, "out": {"z": z, "p": p}}
    t = stats.ttest_ind(a, b, equal_var=False)
    c["welch_ttest"] = {"in": {"a": a, "b": b}, "out": {"t": t.statistic, "p": t.pvalue}}
    u = stats.mannwhitneyu(a, b, use_continuity=True, alternative="two-sided", method="asymptotic")
    c["mann_whitney_u"] = {"in": {"a": a, "b": b}, "out": {"u": float(u.statistic), "p": u.pvalue}}
    rows, cols = 2 + k % 3, 2 + (k // 3) % 3
    table = (rng.randint(1, 200, (rows, cols))).tolist()
    chi2, pc, dof, _ = stats.chi2_contingency(table, correction=False)
    c["chi2_independence"] = {"in": {"table": table}, "out": {"chi2": chi2, "p": pc, "dof": dof}}
    arms = 2 + k % 3
    weights = r(rng.uniform(0.5, 2, arms))
    counts = [int(x) for x in rng.randint(500, 1500, arms)]
    expected = np.array(weights) / sum(weights) * sum(counts)
    s = stats.chisquare(counts, expected)
    c["srm_chi2"] = {"in": {"counts": counts, "weights": weights}, "out": {"chi2": s.statistic, "p": s.pvalue}}
    c["wasserstein"] = {"in": {"reference": a, "current": b}, "out": {"distance": stats.wasserstein_distance(a, b)}}
    bins = 3 + k % 6
    pv = rng.dirichlet(np.ones(bins)); qv = rng.dirichlet(np.ones(bins))
    pv = [round(x, 6) for x in pv]; pv[-1] = round(1 - sum(pv[:-1]), 6)
    qv = [round(x, 6) for x in qv]; qv[-1] = round(1 - sum(qv[:-1]), 6)
    c["jensen_shannon_distance"] = {"in": {"p": pv, "q": qv}, "out": {"distance_base2": float(jensenshannon(pv, qv, base=2))}}
    eps = 1e-4
    e_ = np.maximum(pv, eps); a_ = np.maximum(qv, eps)
    c["psi"] = {"in": {"expected": pv, "actual": qv, "epsilon": eps}, "out": {"psi": float(np.sum((a_ - e_) * np.log(a_ / e_)))}}
    n = int(rng.randint(40, 300))
    scores = np.clip(rng.beta(2, 3, n), 0.01, 0.99)
    scores = [round(float(x), 2) for x in scores]
    labels = [int(rng.uniform() < s ** (0.7 + 0.1 * (k % 5))) for s in scores]
    fit = sm.Logit(labels, sm.add_constant(np.log(np.array(scores) / (1 - np.array(scores))))).fit(disp=0, tol=1e-12, maxiter=100)
    # DeLong's interval from its definition (every positive-negative pair), not from midranks as MedServe computes it.
    pos = [s for s, l in zip(scores, labels) if l == 1]; neg = [s for s, l in zip(scores, labels) if l == 0]
    kern = lambda x, y: 1.0 if x > y else (0.5 if x == y else 0.0)
    v10 = [sum(kern(x, y) for y in neg) / len(neg) for x in pos]
    v01 = [sum(kern(x, y) for x in pos) / len(pos) for y in neg]
    auc = sum(v10) / len(v10)
    var = np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)
    half = stats.norm.ppf(0.975) * np.sqrt(var)
    c["clinical_metrics"] = {"in": {"labels": labels, "scores": scores}, "out": {
        "auroc_ci_low": max(0.0, auc - half), "auroc_ci_high": min(1.0, auc + half),
        "auroc": roc_auc_score(labels, scores), "auprc": average_precision_score(labels, scores),
        "brier": brier_score_loss(labels, scores),
        "calibration_intercept": float(fit.params[0]), "calibration_slope": float(fit.params[1])}}
    prob_true, prob_pred = calibration_curve(labels, scores, n_bins=10, strategy="uniform")
    counts_b = np.bincount(np.searchsorted(np.linspace(0, 1, 11)[1:-1], scores), minlength=10)
    counts_b = counts_b[counts_b > 0]
    c["calibration_bins"] = {"in": {"labels": labels, "scores": scores}, "out": {
        "mean_score": prob_pred.tolist(), "observed_rate": prob_true.tolist(),
        "ece": float(np.sum(counts_b / len(scores) * np.abs(prob_pred - prob_true)))}}
    p1, p2 = round(float(rng.uniform(0.05, 0.5)), 2), round(float(rng.uniform(0.05, 0.5)), 2)
    if p1 == p2:
        p2 = round(p2 + 0.03, 2)
    h = 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p2))
    nper = NormalIndPower().solve_power(effect_size=abs(h), alpha=0.05, power=0.8, ratio=1, alternative="two-sided")
    c["sample_size_two_proportions"] = {"in": {"p1": p1, "p2": p2, "alpha": 0.05, "power": 0.8}, "out": {"n_per_arm": float(nper)}}
    lo, hi = proportion_confint(successes[0], trials[0], alpha=0.05, method="wilson")
    c["wilson_interval"] = {"in": {"successes": successes[0], "trials": trials[0]}, "out": {"low": lo, "high": hi}}
    ps = [round(float(x), 4) for x in rng.uniform(0, 0.2, 3 + k % 7)]
    c["holm"] = {"in": {"p_values": ps}, "out": {"adjusted": multipletests(ps, method="holm")[1].tolist()}}
    c["benjamini_hochberg"] = {"in": {"p_values": ps}, "out": {"adjusted": multipletests(ps, method="fdr_bh")[1].tolist()}}
    cases.append(c)

with open("reference.json", "w") as f:
    json.dump({"generated_by": "make_reference.py with scipy 1.10.1, statsmodels 0.13.5, scikit-learn 1.2.1", "cases": cases}, f, separators=(",", ":"))
