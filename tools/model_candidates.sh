#!/bin/bash
# `make model`: trains every candidate with the same speaker-grouped cross-validation and simulated
# calls, prints each one's clip and call tables, and builds the shipped one into the binary.
# Usage: tools/model_candidates.sh BIN CORPORA "TRAIN FLAGS" SHIPPED "CANDIDATES"
set -euo pipefail
bin=$1 corpora=$2 flags=$3 shipped=$4 candidates=$5
out=.build/model
mkdir -p "$out"
[ -f "$corpora/manifest.csv" ] || { echo "make model: $corpora/manifest.csv not found (set CORPORA=...)" >&2; exit 2; }
report=docs/model-cv.txt
: > "$report.new"
for c in $candidates; do
    case $c in
    features) extra="" ;;
    features-leg) extra="--leg-normalization" ;;
    fusion) extra="--frame-nets $out/cnn" ;;
    fusion-leg) extra="--leg-normalization --frame-nets $out/cnn" ;;
    fusion-leg-full) extra="--leg-normalization --frame-nets $out/cnn-full" ;;
    fusion-leg-mel) extra="--leg-normalization --frame-nets $out/cnn-mel" ;;
    # The same with the network weighted 0.7 against the window ensemble (0.5 above; 0.6 and 0.7 were
    # tried on 7 Dec, docs/MODEL.md).
    fusion-leg-mel-w0.7) extra="--leg-normalization --frame-nets $out/cnn-mel --frame-net-weight 0.7" ;;
    *) echo "make model: unknown candidate '$c' (features, features-leg, fusion, fusion-leg, fusion-leg-full, fusion-leg-mel, fusion-leg-mel-w0.7)" >&2; exit 2 ;;
    esac
    embed=()
    [ "$c" = "$shipped" ] && embed=(--embed-swift Sources/EmotionCore/Model/BuiltInModel.swift)
    echo "== candidate $c: $bin train --corpora $corpora $flags $extra" | tee -a "$report.new"
    # shellcheck disable=SC2086
    # The scored calls (for `emotiontap tune`) exist only with cross-validation and calls.
    scored=()
    case " $flags " in
    *" --cv 0 "* | *" --calls 0 "*) ;;
    *" --cv "*) scored=(--scored-calls "$out/calls-$c.json") ;;
    esac
    "$bin" train --corpora "$corpora" --out "$out/$c.json" --out-of-fold "$out/oof-$c.csv" \
        "${scored[@]}" $flags $extra "${embed[@]}" | tee -a "$report.new"
    echo | tee -a "$report.new"
done
mv "$report.new" "$report"
echo "make model: shipped candidate '$shipped' is in Sources/EmotionCore/Model/BuiltInModel.swift; reports in $report"
