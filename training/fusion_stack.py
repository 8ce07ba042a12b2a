#!/usr/bin/env python3
"""Would a learned combiner beat the fixed mix of the two models? (numpy only)

The shipped model mixes the window networks' and the frame network's probabilities at a fixed
weight w. This check learns the mix instead (logistic regression on the two models' upset
evidence, or on all 14 log-probabilities), judged with nested speaker-grouped folds over the
out-of-fold clip scores of two `emotiontap train --cv 5 --out-of-fold FILE` runs of one recipe:
one at `--frame-net-weight w`, one at `--frame-net-weight 1` (the frame network alone). Both runs
train the same window networks (same seed), so the window networks' share is recovered as
(fused - w * network) / (1 - w). Prints upset accuracy (clips as stored), overall and per corpus.

    python3 training/fusion_stack.py --manifest ../shared/corpora/manifest.csv \
        --fused oof-w0.7.csv --weight 0.7 --network oof-w1.csv
"""
import argparse
import csv

import numpy as np

UPSET = [0, 1, 2, 5]  # angry, disgust, fear, sad in the CSV's 7-way order


def load(path):
    with open(path) as fh:
        rows = list(csv.reader(fh))[1:]
    return np.array([[float(x) for x in row] for row in rows])


def logit(p):
    p = np.clip(p, 1e-5, 1 - 1e-5)
    return np.log(p / (1 - p))


def fit_logistic(X, y, l2=1e-3, iterations=50):
    """Newton's method with a small ridge; the last weight is the intercept."""
    X = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(X.shape[1])
    ridge = l2 * len(X) * np.diag(np.r_[np.ones(len(w) - 1), 0])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-X @ w))
        gradient = X.T @ (p - y) + ridge @ w
        hessian = (X * (p * (1 - p))[:, None]).T @ X + ridge
        w -= np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
    return w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--fused", required=True, help="out-of-fold CSV of the run at --weight")
    ap.add_argument("--weight", type=float, required=True)
    ap.add_argument("--network", required=True, help="out-of-fold CSV of the run at weight 1")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    if not 0 < args.weight < 1:
        ap.error("--weight must be in (0, 1)")

    with open(args.manifest) as fh:
        manifest = list(csv.DictReader(fh))
    corpus = np.array([m["corpus"] for m in manifest])
    speaker = np.array([m["corpus"] + "/" + m["speaker"] for m in manifest])
    upset = np.array([m["upset"] in ("1", "true", "True") for m in manifest], float)

    fused, network = load(args.fused), load(args.network)
    if fused.shape != network.shape or not (fused[:, :2] == network[:, :2]).all():
        raise SystemExit("the two CSVs do not hold the same clips and variants: not runs of one recipe")
    entry, variant = fused[:, 0].astype(int), fused[:, 1].astype(int)
    if entry.max() >= len(manifest):
        raise SystemExit("the CSVs name clips the manifest does not have")
    y = upset[entry]
    net = network[:, 2:]
    windows = (fused[:, 2:] - args.weight * net) / (1 - args.weight)
    drift = np.abs(windows[:, :7].sum(1) - 1).max()
    if drift > 1e-3:
        raise SystemExit(f"the window networks' share does not sum to 1 (off by {drift:.4f}): not the same "
                         "window networks in both runs")

    # Stacker folds by speaker, drawn here: every base score is already out of fold.
    speakers = np.unique(speaker)
    np.random.default_rng(args.seed).shuffle(speakers)
    fold_of = {s: i % args.folds for i, s in enumerate(speakers)}
    fold = np.array([fold_of[speaker[i]] for i in entry])
    corpora = sorted(set(corpus))

    def judged(X, name):
        score = np.zeros(len(y))
        for k in range(args.folds):
            w = fit_logistic(X[fold != k], y[fold != k])
            score[fold == k] = 1 / (1 + np.exp(-(np.hstack([X[fold == k], np.ones(((fold == k).sum(), 1))]) @ w)))
        stored = variant == 0
        right = (score[stored] >= 0.5) == (y[stored] > 0.5)
        per = " ".join(f"{c} {right[corpus[entry[stored]] == c].mean():.4f}" for c in corpora)
        print(f"{name:46s} all {right.mean():.4f}  {per}")

    def upset_mass(p):
        return logit(p[:, UPSET].sum(1))[:, None]

    def log_probs(p):
        return np.log(np.clip(p[:, :7], 1e-5, 1))

    print(f"upset accuracy, clips as stored ({(variant == 0).sum()}), stacker fitted on the other folds")
    for w in (0.5, 0.6, 0.7, 0.8):
        judged(upset_mass((1 - w) * windows + w * net), f"fixed mix at {w} (its calibration fitted)")
    geometric = np.exp((1 - args.weight) * log_probs(windows) + args.weight * log_probs(net))
    judged(upset_mass(geometric / geometric.sum(1, keepdims=True)), f"geometric mix at {args.weight}")
    judged(np.hstack([upset_mass(windows), upset_mass(net)]), "learned: the two upset masses")
    judged(np.hstack([upset_mass(windows), upset_mass(net), logit(windows[:, 7:8]), logit(net[:, 7:8])]),
           "learned: two upset masses and two upset heads")
    judged(np.hstack([log_probs(windows), log_probs(net)]), "learned: all 14 log-probabilities")


if __name__ == "__main__":
    main()
