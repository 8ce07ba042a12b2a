#!/bin/bash
# `make model`'s first step: the frame networks fused into the shipped model (training/frame_model.py,
# PyTorch CPU). Exports the Swift core's frames once, trains one network per speaker fold (without that
# fold, for the cross-validation) and one on every clip, two at a time, prints their CV table and writes
# the golden vectors the Swift tests check. Networks already on disk are kept (delete their folder to
# retrain). Usage: tools/frame_nets.sh BIN CORPORA [VARIANT]
#   VARIANT gated (the default, the shipped recipe): `--gated` networks in .build/model/cnn, trained on
#     frames as the speech gate leaves them, so the live path skips the full analysis of silent frames;
#     their CV table goes to docs/model-cnn-cv.txt and their golden vectors to the Swift tests.
#   VARIANT full: networks that read every frame fully analysed (the recipe before 6 Dec 2026), in
#     .build/model/cnn-full, for the `fusion-leg-full` candidate; nothing in the repository is rewritten.
#   VARIANT mel (7 Dec 2026, the `fusion-leg-mel` candidate, flags from tools/lib/model_recipe.sh): gated
#     networks that also read each frame's 40 mel bands (leg-normalised), from an export with
#     `--mel-bands` in .build/model/export-mel, in .build/model/cnn-mel; two at a time, each started
#     150 s after the one before (building its inputs takes about 11 GB at its peak); CV table in
#     docs/model-cnn-mel-cv.txt, golden vectors in
#     Tests/EmotionTestSupport/Goldens/frame-network/frame-net-mel.json. The weights are averaged over
#     48 more epochs at a constant rate (since 7 Dec 2026 night; 36 that evening, 12 that afternoon);
#     the average after 36 stays beside them in swa-36/, as the schedule's last weights do in before-swa/.
# FRAME_NET_FLAGS adds words to every `frame_model.py train` (an experiment, e.g. "--upset-w 1").
set -euo pipefail
. "$(dirname "$0")/lib/model_recipe.sh"
bin=$1 corpora=$2 variant=${3:-gated}
out=.build/model
export=$out/export export_flags=() folds=(0 1 2 3 4 -1) stagger=0
case $variant in
gated) nets=$out/cnn flags=(--gated --epochs 40) ;;
full) nets=$out/cnn-full flags=(--epochs 40) ;;
mel) nets=$out/cnn-mel flags=("${shipped_net_flags[@]}" --swa-snapshots 36) export=$out/export-mel export_flags=(--mel-bands) stagger=150 ;;
*) echo "make model: unknown frame network variant '$variant' (gated, full, mel)" >&2; exit 2 ;;
esac
[ -f "$corpora/manifest.csv" ] || { echo "make model: $corpora/manifest.csv not found (set CORPORA=...)" >&2; exit 2; }
python3 -c "import torch, numpy" 2>/dev/null || {
    echo "make model: PyTorch is missing: pip install -r training/requirements.txt" \
        "--extra-index-url https://download.pytorch.org/whl/cpu (or a local CPU wheel)" >&2
    exit 2
}
mkdir -p "$nets"
# Networks of another recipe would be kept silently: ask for them to go.
for net in "$nets"/frame_net_*.json; do
    [ -f "$net" ] || continue
    # shellcheck disable=SC2086 # FRAME_NET_FLAGS is split into words on purpose
    python3 training/frame_model.py check-net --net "$net" ${flags[@]+"${flags[@]}"} ${FRAME_NET_FLAGS:-} || {
        echo "make model: delete $nets to train the networks again with this recipe" >&2
        exit 2
    }
done
if [ ! -f "$export/meta.json" ]; then
    # The folds of `train --cv 5` (`--fold-seed 1`, the default of both) and the channel copies of `--seed 1`.
    "$bin" export --corpora "$corpora" --out "$export" --augment 2 --seed 1 --folds 5 ${export_flags[@]+"${export_flags[@]}"}
fi
todo=()
for f in "${folds[@]}"; do
    tag=$([ "$f" = -1 ] && echo all || echo "f$f")
    [ -f "$nets/frame_net_${tag}_s1.json" ] || todo+=("$f")
done
if [ ${#todo[@]} -gt 0 ]; then
    echo "make model: training $variant frame networks for folds ${todo[*]} (-1 = all clips), two at a time"
    train_one() {
        # shellcheck disable=SC2086 # FRAME_NET_FLAGS is split into words on purpose
        python3 training/frame_model.py train ${flags[@]+"${flags[@]}"} ${FRAME_NET_FLAGS:-} --fold "$1" --seed 1 \
            --export "$export" --out "$nets" > "$nets/log_$1.txt" 2>&1 || { tail -5 "$nets/log_$1.txt" >&2; return 1; }
    }
    pids=()
    for f in "${todo[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 5; done
        train_one "$f" &
        pids+=($!)
        # The next one's input building (the memory peak) after this one's.
        [ "$stagger" -gt 0 ] && sleep "$stagger"
    done
    for p in "${pids[@]}"; do wait "$p" || { echo "make model: a frame network failed to train" >&2; exit 1; }; done
fi
case $variant in
gated) report=docs/model-cnn-cv.txt golden=Tests/EmotionTestSupport/Goldens/frame-network/frame-net.json ;;
mel) report=docs/model-cnn-mel-cv.txt golden=Tests/EmotionTestSupport/Goldens/frame-network/frame-net-mel.json ;;
*) report=$nets/model-cnn-cv.txt golden= ;;
esac
python3 training/frame_model.py evaluate --seeds 1 --export "$export" --out "$nets" --write-oof \
    --fusion "$out/oof-features.csv" --report "$report" | tail -3
if [ -n "$golden" ]; then
    python3 training/frame_model.py golden --export "$export" --net "$nets/frame_net_all_s1.json" --golden "$golden"
fi
