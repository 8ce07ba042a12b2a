#!/bin/bash
# A corpus left out of training: the shipped recipe (frame networks per speaker fold, then
# `train --leg-normalization --frame-nets`) trained on every other corpus of the manifest, then
# `emotiontap eval` on all of the left-out one (speakers and recordings it never heard).
# Usage: tools/model_loco.sh BIN CORPORA CORPUS [VARIANT]   (CORPUS: e.g. ravdess)
#   VARIANT mel (the default; `fusion-leg-mel-w0.7`, shipped since 7 Dec 2026, spelled for this script and
#     `make model` in tools/lib/model_recipe.sh): gated networks that also read the 40 mel bands, their
#     weights averaged over 48 more epochs (since 7 Dec 2026 night; 36 that evening, 12 that afternoon),
#     weighted 0.7 in the fusion, in .build/model/loco-CORPUS-mel, two at a time started 150 s apart
#     (about 11 GB each at their peak); about 75 minutes on 2 cores.
#   VARIANT gated (`fusion-leg`, 6 Dec 2026): in .build/model/loco-CORPUS; about 26 minutes.
set -euo pipefail
. "$(dirname "$0")/lib/model_recipe.sh"
bin=$1 corpora=$2 left_out=$3 variant=${4:-mel}
case $variant in
mel) out=.build/model/loco-$left_out-mel net_flags=("${shipped_net_flags[@]}")
    export_flags=(--mel-bands) stagger=150 weight=$shipped_net_weight ;;
gated) out=.build/model/loco-$left_out net_flags=(--gated --epochs 40) export_flags=() stagger=0 weight=0.5 ;;
*) echo "model_loco: unknown variant '$variant' (mel, gated)" >&2; exit 2 ;;
esac
mkdir -p "$out/cnn"
# Networks of another recipe would be kept silently: start again without them.
for net in "$out"/cnn/frame_net_*.json; do
    [ -f "$net" ] || continue
    python3 training/frame_model.py check-net --net "$net" "${net_flags[@]}" ||
        { echo "model_loco: delete $out/cnn to train its networks again with this recipe" >&2; exit 2; }
done
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
    --augment 2 --seed 1 --folds 5 ${export_flags[@]+"${export_flags[@]}"}
pids=()
for f in 0 1 2 3 4 -1; do
    tag=$([ "$f" = -1 ] && echo all || echo "f$f")
    [ -f "$out/cnn/frame_net_${tag}_s1.json" ] && continue
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 5; done
    python3 training/frame_model.py train "${net_flags[@]}" --fold "$f" --seed 1 --export "$out/export" \
        --out "$out/cnn" > "$out/cnn/log_$f.txt" 2>&1 &
    pids+=($!)
    # The next one's input building (the memory peak) after this one's.
    if [ "$stagger" -gt 0 ]; then sleep "$stagger"; fi
done
for p in ${pids[@]+"${pids[@]}"}; do wait "$p" || { echo "model_loco: a frame network failed to train (logs in $out/cnn)" >&2; exit 1; }; done
# shellcheck disable=SC2086 # fusion_flags is split into words on purpose
"$bin" train --corpora "$corpora" --manifest "$out/train.csv" --out "$out/fusion-leg.json" --out-of-fold "$out/oof.csv" \
    $fusion_flags --leg-normalization --frame-nets "$out/cnn" --frame-net-weight "$weight" > "$out/train.txt"
"$bin" eval --corpora "$corpora" --manifest "$out/left-out.csv" --model "$out/fusion-leg.json" --calls 2 > "$out/eval.txt"
cat "$out/eval.txt"
echo "model_loco: reports in $out/train.txt (cross-validation without $left_out) and $out/eval.txt ($left_out)"
