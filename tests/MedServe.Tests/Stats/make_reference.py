#!/usr/bin/python3
# Writes reference.json: 20 fixed cases per statistic, computed by scipy 1.10, statsmodels 0.13 and
# scikit-learn 1.2 (Debian's python3-scipy, python3-statsmodels, python3-sklearn). Run by hand when a
# statistic is added; CI only reads the numbers. Inputs are rounded to 2 decimals so both sides read
# the same doubles.
import json
import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import roc_curve, roc_auc_score, average_precision_score, brier_score_loss
from sklearn.calibration import calibration_curve
import statsmodels.api as sm
from statsmodels.stats.proportion import proportions_ztest, proportion_confint
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import confint_proportions_2indep
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score


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
    # Calibration fit intervals: statsmodels' Wald intervals (conf_int) of the same fit.
    ci = fit.conf_int(alpha=0.05)
    c["clinical_metrics"]["out"].update({"calibration_intercept_ci_low": float(ci[0][0]), "calibration_intercept_ci_high": float(ci[0][1]),
        "calibration_slope_ci_low": float(ci[1][0]), "calibration_slope_ci_high": float(ci[1][1])})
    # KS: sizes from a handful to 1500 so n = round(n1 n2 / (n1 + n2)) reaches each of scipy's methods.
    k1, k2 = [(6, 9), (12, 15), (30, 25), (60, 80), (120, 200), (200, 400), (300, 1500), (1000, 500), (800, 1200), (40, 45)][k % 10]
    shift = [0.0, 0.15, 0.3, 0.6][k % 4] * (1 + k // 10)
    ra = r(rng.normal(0, 1, k1)); rb = r(rng.normal(shift, 1 + 0.2 * (k % 3), k2))
    ks = stats.ks_2samp(ra, rb, method="asymp")
    c["ks_2samp"] = {"in": {"reference": ra, "current": rb}, "out": {"d": float(ks.statistic), "p": float(ks.pvalue)}}
    d = round(float(rng.uniform(0.1, 1.2)), 2)
    c["sample_size_ttest"] = {"in": {"cohens_d": d, "alpha": 0.05, "power": 0.8}, "out": {"n_per_arm": float(TTestIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1, alternative="two-sided"))}}
    # Regression outcomes: sklearn's errors, scipy's t interval of the per-case errors.
    values = r(rng.normal(50, 10, n)); preds = r(np.array(values) + rng.normal(0.5 * (k % 3), 4, n))
    err = np.array(preds) - np.array(values)
    mae_ci = stats.t.interval(0.95, n - 1, loc=np.mean(np.abs(err)), scale=stats.sem(np.abs(err)))
    me_ci = stats.t.interval(0.95, n - 1, loc=np.mean(err), scale=stats.sem(err))
    c["regression_metrics"] = {"in": {"values": values, "predictions": preds}, "out": {
        "mae": mean_absolute_error(values, preds), "mae_ci_low": mae_ci[0], "mae_ci_high": mae_ci[1],
        "mean_error": float(np.mean(err)), "mean_error_ci_low": me_ci[0], "mean_error_ci_high": me_ci[1],
        "rmse": float(np.sqrt(mean_squared_error(values, preds))), "r2": r2_score(values, preds)}}
    lo2, hi2 = confint_proportions_2indep(successes[0], trials[0], successes[1], trials[1], method="newcomb", compare="diff", alpha=0.05)
    c["proportion_difference"] = {"in": {"successes": successes, "trials": trials}, "out": {
        "difference": successes[0] / trials[0] - successes[1] / trials[1], "low": lo2, "high": hi2}}
    fpr, tpr, _ = roc_curve(labels, scores)
    c["roc_curve"] = {"in": {"labels": labels, "scores": scores}, "out": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}}
    cases.append(c)

# scipy's kstwo.sf(x, n) on a grid that reaches every branch of its method choice (exact sums,
# Durbin's matrix, Pomeranz, Pelz-Good, Smirnov's one-sided sum).
kstwo = []
for n in [3, 10, 50, 140, 141, 400, 2000, 20000, 150000]:
    for x in [0.6 / n, 0.9 / n, 1.5 / n, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3, 0.45, 0.55, 0.8, 1 - 1.5 / n]:
        if 0 < x < 1:
            kstwo.append({"n": n, "x": x, "sf": float(stats.kstwo.sf(x, n))})

with open("reference.json", "w") as f:
    json.dump({"generated_by": "make_reference.py with scipy 1.10.1, statsmodels 0.13.5, scikit-learn 1.2.1", "cases": cases, "kstwo": kstwo}, f, separators=(",", ":"))
