#!/usr/bin/env bash
# Two service builds side by side on this noisy host: ROUNDS rounds, each running every step of
# BENCH_STEPS on build A then on build B (tools/bench_live.sh, the same generator for both), then the
# median service cores per step for each build and the median of the per-round ratios B/A. A change is
# only worth claiming when the ratio holds across rounds, not in one run.
#   BENCH_STEPS="1000:pcmu 2000:pcmu" BENCH_SECONDS=20 tools/bench_compare.sh OLD/emotiontap .build/release/emotiontap 3
# Two models on one build: BENCH_MODEL_A=FILE and/or BENCH_MODEL_B=FILE serve those model files on their side
# (the same binary may then be given twice).
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-3}
for bin in "$a" "$b"; do [ -x "$bin" ] || { echo "bench_compare: $bin is not an executable" >&2; exit 2; }; done
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$([ "$side" = A ] && echo "$a" || echo "$b")
    model=$([ "$side" = A ] && echo "${BENCH_MODEL_A:-}" || echo "${BENCH_MODEL_B:-}")
    # Column 1 legs, 2 way, 3 service cores, 8 p99 ms (tools/bench_live.sh's table).
    BIN=$bin LOADGEN_BIN=$a BENCH_MODEL=$model tools/bench_live.sh | awk -v r="$r" -v s="$side" 'NR > 1 && NF >= 8 {print r, s, $1 ":" $2, $3, $8}' \
      | tee -a "$results"
  done
done
python3 - "$results" "$a" "$b" "${BENCH_MODEL_A:-}" "${BENCH_MODEL_B:-}" <<'PY'
import collections, statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
cores = collections.defaultdict(dict)
p99 = collections.defaultdict(lambda: collections.defaultdict(list))
for r, side, step, c, lat in rows:
    cores[step].setdefault(side, {})[r] = float(c)
    p99[step][side].append(float(lat))
print(f"A = {sys.argv[2]} {sys.argv[4]}\nB = {sys.argv[3]} {sys.argv[5]}")
print(f"{'step':16s} {'A cores (median)':>17s} {'B cores (median)':>17s} {'B/A per round':>28s} {'median B/A':>11s} {'p99 A / B (median ms)':>22s}")
for step, sides in cores.items():
    a, b = sides.get("A", {}), sides.get("B", {})
    ratios = [b[r] / a[r] for r in a if r in b and a[r] > 0]
    print(f"{step:16s} {statistics.median(a.values()):17.3f} {statistics.median(b.values()):17.3f} "
          f"{' '.join(f'{x:.3f}' for x in ratios):>28s} {statistics.median(ratios):11.3f} "
          f"{statistics.median(p99[step]['A']):10.1f} / {statistics.median(p99[step]['B']):.1f}")
PY
