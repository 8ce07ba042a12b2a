#!/usr/bin/env python3
"""Feature extraction speed: `emotiontap features` against librosa on the same audio, in one run.

Usage:  python3 tools/features_speed.py [--clips 300] [--rounds 3] [--bin .build/release/emotiontap]
Needs:  librosa (tools/requirements-goldens.txt) and a release build (`make build`).

Audio: the first --clips files of ../shared/corpora/manifest.csv (8 kHz G.711 mu-law), or the
bundled sample call when the corpora are absent. Both sides compute the same features at the
default settings (sr 8000, n_fft 512, win_length 400, hop 160, 40 mels): RMS, ZCR, spectral
centroid, 13 MFCCs and 12 chroma per frame; EmotionTap also computes its extra descriptors (pitch,
voicing, roll-off, flatness, slope, flux, band ratio), so its side does more work.
Both sides time extraction only: decoding the WAV and printing are left out. librosa shares one
STFT between the spectral features, as a careful user would. Rounds alternate the two tools so
machine noise hits both alike; the medians and their ratio are printed.
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import soundfile
import librosa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR, N_FFT, WIN, HOP, N_MELS = 8000, 512, 400, 160, 40


def pick_files(count):
    corpora = os.path.join(ROOT, "..", "shared", "corpora")
    manifest = os.path.join(corpora, "manifest.csv")
    if os.path.exists(manifest):
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        # Every k-th row: a spread over the corpora and speakers, the same files every run.
        step = max(1, len(rows) // count)
        return [os.path.join(corpora, r["path"]) for r in rows[::step][:count]]
    print("../shared/corpora is absent: timing the bundled sample call instead", file=sys.stderr)
    return [os.path.join(ROOT, "config", "samples", "sample-call.wav")]


def librosa_features(y):
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP)
    magnitude = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN))
    power = magnitude ** 2
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SR, n_fft=N_FFT, hop_length=HOP)
    mel = librosa.feature.melspectrogram(S=power, sr=SR, n_mels=N_MELS, fmin=0, fmax=SR / 2)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)
    chroma = librosa.feature.chroma_stft(S=power, sr=SR)
    return rms.shape[1] + zcr.shape[1] + centroid.shape[1] + mfcc.shape[1] + chroma.shape[1]


def time_librosa(signals):
    started = time.perf_counter()
    for y in signals:
        librosa_features(y)
    return time.perf_counter() - started


def time_emotiontap(binary, files):
    result = subprocess.run([binary, "features", "--format", "none", "--timing", *files],
                            capture_output=True, text=True, check=True)
    line = next(l for l in result.stderr.splitlines() if l.startswith("timing:"))
    fields = dict(item.split("=") for item in line.split()[1:])
    return float(fields["extraction_s"]), float(fields["audio_s"]), int(fields["frames"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "release", "emotiontap"))
    args = parser.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} not found: run `make build` first")

    files = pick_files(args.clips)
    signals = [soundfile.read(f, dtype="float32")[0] for f in files]
    signals = [s.mean(axis=1) if s.ndim > 1 else s for s in signals]
    audio_seconds = sum(len(s) for s in signals) / SR
    librosa_features(signals[0])  # warm-up: imports, filter caches, FFT plans
    time_emotiontap(args.bin, files[:1])

    ours, theirs = [], []
    for _ in range(args.rounds):
        seconds, their_audio, frames = time_emotiontap(args.bin, files)
        ours.append(seconds)
        theirs.append(time_librosa(signals))
    ours_x = audio_seconds / statistics.median(ours)
    librosa_x = audio_seconds / statistics.median(theirs)
    print(f"audio: {len(files)} files, {audio_seconds:.1f} s at {SR} Hz (emotiontap read {their_audio:.1f} s, {frames} frames)")
    print(f"librosa {librosa.__version__}: median {statistics.median(theirs):.3f} s over {args.rounds} rounds = {librosa_x:.0f}x real time")
    print(f"emotiontap features: median {statistics.median(ours):.3f} s over {args.rounds} rounds = {ours_x:.0f}x real time")
    print(f"speed ratio emotiontap / librosa: {ours_x / librosa_x:.1f}x")


if __name__ == "__main__":
    main()
