#!/bin/bash
# A corpus left out of training: the shipped recipe (`fusion-leg`: gated frame networks per speaker fold,
# then `train --leg-normalization --frame-nets`) trained on every other corpus of the manifest, then
# `emotiontap eval` on all of the left-out one (speakers and recordings it never heard).
# About 35 minutes on 2 cores. Usage: tools/model_loco.sh BIN CORPORA CORPUS   (CORPUS: e.g. ravdess)
set -euo pipefail
bin=$1 corpora=$2 left_out=$3
out=.build/model/loco-$left_out
mkdir -p "$out/cnn"
# Networks from before the recipe's gated frames would be kept silently: start again without them.
if ls "$out"/cnn/frame_net_*.json >/dev/null 2>&1 && ! grep -q '"gatedFrames": true' "$out"/cnn/frame_net_*.json; then
    echo "model_loco: $out/cnn holds networks of another recipe (not gated): delete it first" >&2
    exit 2
fi
[ -f "$corpora/manifest.csv" ] || { echo "model_loco: $corpora/manifest.csv not found" >&2; exit 2; }
# The manifest split by its corpus column.
python3 - "$corpora/manifest.csv" "$left_out" "$out" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
corpus = rows[0].index("corpus")
kept = [r for r in rows[1:] if r[corpus] != sys.argv[2]]
left = [r for r in rows[1:] if r[corpus] == sys.argv[2]]
if not left:
    sys.exit(f"model_loco: no clips of corpus '{sys.argv[2]}' in the manifest")
for name, part in (("train.csv", kept), ("left-out.csv", left)):
    with open(f"{sys.argv[3]}/{name}", "w", newline="") as f:
        csv.writer(f).writerows([rows[0]] + part)
PY
[ -f "$out/export/meta.json" ] || "$bin" export --corpora "$corpora" --manifest "$out/train.csv" --out "$out/export" \
    --augment 2 --seed 1 --folds 5
printf '%s\n' 0 1 2 3 4 -1 | xargs -P 2 -I{} sh -c \
    'tag=$([ {} = -1 ] && echo all || echo f{}); [ -f '"$out"'/cnn/frame_net_${tag}_s1.json ] || python3 training/frame_model.py train --gated --fold {} --seed 1 --epochs 40 --export '"$out"'/export --out '"$out"'/cnn > '"$out"'/cnn/log_{}.txt 2>&1 || { tail -5 '"$out"'/cnn/log_{}.txt >&2; exit 255; }'
"$bin" train --corpora "$corpora" --manifest "$out/train.csv" --out "$out/fusion-leg.json" --out-of-fold "$out/oof.csv" \
    --seed 1 --cv 5 --augment 4 --epochs 25 --ensemble 3 --hidden 128 --dropout 0.5 --calls 2 \
    --leg-normalization --frame-nets "$out/cnn" > "$out/train.txt"
"$bin" eval --corpora "$corpora" --manifest "$out/left-out.csv" --model "$out/fusion-leg.json" --calls 2 > "$out/eval.txt"
cat "$out/eval.txt"
echo "model_loco: reports in $out/train.txt (cross-validation without $left_out) and $out/eval.txt ($left_out)"
