#!/usr/bin/env python3
"""CPU per leg-second for each stage of the live path, from a perf profile of the service.

Each sample goes to the first stage its call stack matches, leaf first, so a library call is charged
to the stage that made it (a log10 inside feature extraction is features; recvmsg under oRTP is
receive). Usage: profile_stages.py PERF_DATA CORES LEGS
"""
import collections
import re
import subprocess
import sys

STAGES = [
    ("model", r"FrameNetStream|FrameNet|Network|ModelRunner|sgemm|openblas|EmotionModel|UpsetCalibration|ClipPredictor|ThreadScratch"),
    ("window stats", r"WindowVector|WindowAggregator|LegBaseline"),
    ("features", r"FrameFeatureExtractor|fftw|FrameNetInputs|StreamingAnalyzer|RealFFT"),
    ("decode", r"g711|PayloadDecoder|G711|opus_|Opus|PCM.*toFloat|plc_|conceal|libopus|libspandsp"),
    ("decisions", r"LegDecisions|LegMood"),
    ("publish", r"EventPublisher|EventTimestamp|JSON|Event\.|sendto|sendmsg|LiveLeg.*publish|LiveLeg.*send"),
    ("receive", r"ortp|rtp_session|msgb|recvmsg|recvfrom|RTPReceiveSession|epoll|LegPipeline|RTPWorker|LiveLeg|StreamInbox|ReceptionStatistics|udp_|sock_|skb"),
]
PATTERNS = [(name, re.compile(p)) for name, p in STAGES]


def main():
    data, cores, legs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"],
                         capture_output=True, text=True).stdout
    counts = collections.Counter()
    total = 0
    for block in out.split("\n\n"):
        frames = [line for line in block.strip().split("\n")[1:] if line.strip()]
        if not frames:
            continue
        total += 1
        stage = next((name for f in frames for name, p in PATTERNS if p.search(f)), "other")
        counts[stage] += 1
    print(f"{'stage':14s} {'share':>7s} {'ms per leg-second':>18s}")
    for name in [s for s, _ in STAGES] + ["other"]:
        share = counts[name] / max(total, 1)
        print(f"{name:14s} {100 * share:6.1f}% {1000 * cores * share / legs:18.3f}")
    print(f"{'all':14s} {100.0:6.1f}% {1000 * cores / legs:18.3f}   ({total} samples, {cores:.3f} cores, {legs} legs)")


if __name__ == "__main__":
    main()
