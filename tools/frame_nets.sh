#!/bin/bash
# `make model`'s first step: the frame networks fused into the shipped model (training/frame_model.py,
# PyTorch CPU). Exports the Swift core's frames once, trains one network per speaker fold (without that
# fold, for the cross-validation) and one on every clip, two at a time, prints their CV table and writes
# the golden vectors the Swift tests check. Networks already on disk are kept (delete .build/model/cnn
# to retrain). Usage: tools/frame_nets.sh BIN CORPORA
set -euo pipefail
bin=$1 corpora=$2
out=.build/model
[ -f "$corpora/manifest.csv" ] || { echo "make model: $corpora/manifest.csv not found (set CORPORA=...)" >&2; exit 2; }
python3 -c "import torch, numpy" 2>/dev/null || {
    echo "make model: PyTorch is missing: pip install -r training/requirements.txt" \
        "--extra-index-url https://download.pytorch.org/whl/cpu (or a local CPU wheel)" >&2
    exit 2
}
mkdir -p "$out/cnn"
if [ ! -f "$out/export/meta.json" ]; then
    # The folds and channel copies of `train --seed 1 --cv 5`.
    "$bin" export --corpora "$corpora" --out "$out/export" --augment 2 --seed 1 --folds 5
fi
todo=()
for f in 0 1 2 3 4 -1; do
    tag=$([ "$f" = -1 ] && echo all || echo "f$f")
    [ -f "$out/cnn/frame_net_${tag}_s1.json" ] || todo+=("$f")
done
if [ ${#todo[@]} -gt 0 ]; then
    echo "make model: training frame networks for folds ${todo[*]} (-1 = all clips), two at a time"
    printf '%s\n' "${todo[@]}" | xargs -P 2 -I{} sh -c \
        'python3 training/frame_model.py train --fold {} --seed 1 --epochs 40 --export '"$out/export"' --out '"$out/cnn"' > '"$out/cnn"'/log_{}.txt 2>&1 || { tail -5 '"$out/cnn"'/log_{}.txt >&2; exit 255; }'
fi
python3 training/frame_model.py evaluate --seeds 1 --export "$out/export" --out "$out/cnn" --write-oof \
    --fusion "$out/oof-features.csv" --report docs/model-cnn-cv.txt | tail -3
python3 training/frame_model.py golden --export "$out/export" --net "$out/cnn/frame_net_all_s1.json" \
    --golden Tests/EmotionTestSupport/Goldens/frame-network/frame-net.json
