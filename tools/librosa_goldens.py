#!/usr/bin/env python3
"""Regenerate the librosa golden feature files used by the Swift tests.

Usage:  python3 tools/librosa_goldens.py        (from anywhere; paths are found from this file)
Needs:  pip install -r tools/requirements-goldens.txt   (librosa 0.11.0 exactly)

For every fixture Tests/EmotionCoreTests/Fixtures/*.wav (8 kHz G.711 mu-law, CREMA-D) and for
parameter sets A and B it writes Tests/EmotionCoreTests/Goldens/<clipstem>__<A|B>.json.

Everything is computed in float64. Two deviations from librosa's *defaults* are made on purpose
so the goldens are true float64 references (see tools/librosa_definitions.md):
  * rms(..., dtype=np.float64)           (librosa default dtype=np.float32 squares in float32)
  * melspectrogram(..., dtype=np.float64) and chroma_stft(..., dtype=np.float64): these kwargs
    reach filters.mel / filters.chroma, whose default dtype=np.float32 would round the
    filterbank weights to float32.
The script prints the largest relative difference against the all-defaults calls (~1e-7).

The script also recomputes every feature with a from-scratch numpy implementation written
from tools/librosa_definitions.md (no librosa calls) and asserts it agrees with librosa, so
the notes the Swift port is written from are checked against the real thing.
"""
import json
import os
import struct
import sys
import warnings

import numpy as np
import scipy
import scipy.fft
import librosa

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "EmotionCoreTests", "Fixtures")
GOLDENS = os.path.join(ROOT, "Tests", "EmotionCoreTests", "Goldens")

PARAMS = {
    "A": dict(sample_rate=8000, n_fft=256, win_length=200, hop_length=80, n_mels=40, fmin=0, fmax=4000),
    "B": dict(sample_rate=8000, n_fft=512, win_length=400, hop_length=160, n_mels=64, fmin=0, fmax=4000),
}
N_MFCC = 13
SIG = 7  # significant digits kept in the JSON


# ----------------------------------------------------------------------------- decoding
def ulaw_table():
    """G.711 mu-law -> int16, ITU-T G.711 / Sun g711.c / spandsp ulaw_to_linear.

    u = ~code; t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    value = (u & 0x80) ? (0x84 - t) : (t - 0x84).  Range -32124..32124; 0xFF and 0x7F -> 0.
    """
    tab = np.empty(256, dtype=np.int16)
    for code in range(256):
        u = ~code & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        tab[code] = (0x84 - t) if (u & 0x80) else (t - 0x84)
    return tab


ULAW = ulaw_table()


def read_ulaw_wav(path):
    """Parse RIFF/WAVE by hand; return (raw mu-law bytes, sample rate)."""
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:4] == b"RIFF" and buf[8:12] == b"WAVE", path
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(buf):
        cid = buf[pos:pos + 4]
        size = struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        body = buf[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    assert fmt is not None and data is not None, path
    tag, channels, sr, _, _, bits = fmt
    assert (tag, channels, bits) == (7, 1, 8), (path, fmt)
    return data, sr


def decode(data):
    pcm = ULAW[np.frombuffer(data, dtype=np.uint8)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # removed in Python 3.13
    except ImportError:
        audioop = None
    if audioop is not None:
        ref = np.frombuffer(audioop.ulaw2lin(data, 2), dtype="<i2")
        assert np.array_equal(pcm, ref), "mu-law table differs from audioop.ulaw2lin"
    return pcm.astype(np.float64) / 32768.0


# ----------------------------------------------------------------------------- librosa
def librosa_features(y, p, float64=True):
    sr, n_fft, win, hop = p["sample_rate"], p["n_fft"], p["win_length"], p["hop_length"]
    kw64 = dict(dtype=np.float64) if float64 else {}
    rms = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop, center=True, **kw64)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop, center=True)[0]
    centroid = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop,
                                                 win_length=win)[0]
    M = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, win_length=win,
                                       n_mels=p["n_mels"], fmin=p["fmin"], fmax=p["fmax"], **kw64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(M, top_db=None), n_mfcc=N_MFCC)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr, n_fft=n_fft, hop_length=hop,
                                         win_length=win, tuning=0.0, **kw64)
    n = rms.shape[-1]
    assert zcr.shape[-1] == n and centroid.shape[-1] == n and mfcc.shape[-1] == n \
        and chroma.shape[-1] == n, "frame count mismatch"
    t = librosa.frames_to_time(np.arange(n), sr=sr, hop_length=hop)
    return dict(t=t, rms=rms, zcr=zcr, centroid=centroid, mfcc=mfcc, chroma=chroma)


# ----------------------------------------------------------------------------- from scratch
def ref_features(y, p):
    """Independent numpy/scipy re-implementation following librosa_definitions.md."""
    sr, n_fft, win, hop = p["sample_rate"], p["n_fft"], p["win_length"], p["hop_length"]
    n_mels, fmin, fmax = p["n_mels"], p["fmin"], p["fmax"]
    L = len(y)
    n_frames = 1 + L // hop                     # = 1 + (L + 2*(n_fft//2) - n_fft)//hop, n_fft even
    half = n_fft // 2

    def frames(x):                              # x already padded by n_fft//2 at both ends
        return np.stack([x[k * hop:k * hop + n_fft] for k in range(n_frames)], axis=1)

    # rms: zero pad, mean of squares over n_fft samples, sqrt
    fz = frames(np.pad(y, half, mode="constant"))
    rms = np.sqrt(np.mean(fz ** 2, axis=0))

    # zcr: edge pad; within each frame count i=1..n_fft-1 with signbit(x[i]) != signbit(x[i-1])
    # (|x| <= 1e-10 -> 0, which is "positive"); divide by n_fft
    fe = frames(np.pad(y, half, mode="edge"))
    fe = np.where(np.abs(fe) <= 1e-10, 0.0, fe)
    sb = np.signbit(fe)
    zcr = np.sum(sb[1:] != sb[:-1], axis=0) / n_fft

    # stft: periodic hann(win) centred in n_fft, zero-padded signal
    n = np.arange(win)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * n / win)
    lpad = (n_fft - win) // 2
    window = np.zeros(n_fft)
    window[lpad:lpad + win] = w
    X = scipy.fft.rfft(fz * window[:, None], axis=0)      # (n_fft//2+1, n_frames)
    mag = np.abs(X)
    power = mag ** 2
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft

    # centroid: sum(f*|X|)/sum(|X|), all-zero column -> 0
    s1 = mag.sum(axis=0)
    centroid = np.where(s1 < np.finfo(float).tiny, 0.0, (freqs[:, None] * mag).sum(axis=0) /
                        np.where(s1 < np.finfo(float).tiny, 1.0, s1))

    # slaney mel
    def hz2mel(f):
        f = np.asarray(f, dtype=float)
        return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) / (np.log(6.4) / 27.0),
                        f / (200.0 / 3))

    def mel2hz(m):
        return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * 200.0 / 3)

    mel_f = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lower = (freqs - mel_f[i]) / (mel_f[i + 1] - mel_f[i])
        upper = (mel_f[i + 2] - freqs) / (mel_f[i + 2] - mel_f[i + 1])
        fb[i] = np.maximum(0, np.minimum(lower, upper)) * 2.0 / (mel_f[i + 2] - mel_f[i])
    S_db = 10.0 * np.log10(np.maximum(1e-10, fb @ power))
    N = n_mels
    k, m = np.arange(N)[:, None], np.arange(N)[None, :]
    dct = np.cos(np.pi * k * (2 * m + 1) / (2 * N)) * np.where(k == 0, np.sqrt(1.0 / N), np.sqrt(2.0 / N))
    mfcc = (dct @ S_db)[:N_MFCC]

    # chroma filterbank (filters.chroma, n_chroma=12, tuning=0, ctroct=5, octwidth=2, norm=2, base_c)
    nc = 12
    fr = np.arange(1, n_fft) * sr / n_fft
    frq = nc * np.log2(fr / (440.0 / 16))
    frq = np.concatenate(([frq[0] - 1.5 * nc], frq))
    bw = np.concatenate((np.maximum(frq[1:] - frq[:-1], 1.0), [1.0]))
    D = frq[None, :] - np.arange(nc)[:, None]
    D = np.remainder(D + 6 + 10 * nc, nc) - 6
    wts = np.exp(-0.5 * (2 * D / bw[None, :]) ** 2)
    wts = wts / np.sqrt(np.sum(wts ** 2, axis=0, keepdims=True))
    wts = wts * np.exp(-0.5 * ((frq / nc - 5.0) / 2.0) ** 2)[None, :]
    wts = np.roll(wts, -3, axis=0)[:, :n_fft // 2 + 1]
    raw = wts @ power
    mx = raw.max(axis=0)
    chroma = raw / np.where(mx < np.finfo(float).tiny, 1.0, mx)

    t = np.arange(n_frames) * hop / sr
    return dict(t=t, rms=rms, zcr=zcr, centroid=centroid, mfcc=mfcc, chroma=chroma)


def max_rel(a, b, floor):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), floor)))


# ----------------------------------------------------------------------------- output
def r(x):
    return float(f"{float(x):.{SIG}g}")


def main():
    assert librosa.__version__ == "0.11.0", librosa.__version__
    os.makedirs(GOLDENS, exist_ok=True)
    clips = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".wav"))
    assert clips, "no fixtures"
    total = 0
    for clip in clips:
        data, sr = read_ulaw_wav(os.path.join(FIXTURES, clip))
        y = decode(data)
        for name, p in PARAMS.items():
            assert sr == p["sample_rate"]
            F = librosa_features(y, p)
            # cross-checks
            R = ref_features(y, p)
            for key, floor in (("t", 1e-9), ("rms", 1e-6), ("zcr", 1e-6), ("centroid", 1.0),
                               ("mfcc", 1e-3), ("chroma", 1e-6)):
                err = max_rel(R[key], F[key], floor)
                assert err < 1e-9, (clip, name, key, err)
            D = librosa_features(y, p, float64=False)
            dflt = max(max_rel(D[k], F[k], fl) for k, fl in
                       (("rms", 1e-6), ("centroid", 1.0), ("mfcc", 1e-3), ("chroma", 1e-6)))
            frames = []
            for i in range(len(F["t"])):
                frames.append({
                    "t": r(F["t"][i]),
                    "rms": r(F["rms"][i]),
                    "zcr": r(F["zcr"][i]),
                    "centroid": r(F["centroid"][i]),
                    "mfcc": [r(v) for v in F["mfcc"][:, i]],
                    "chroma": [r(v) for v in F["chroma"][:, i]],
                })
            doc = {"clip": clip, "params": p, "librosa": librosa.__version__, "frames": frames}
            out = os.path.join(GOLDENS, f"{os.path.splitext(clip)[0]}__{name}.json")
            # one frame per line: small, but still diffable
            head = json.dumps({k: doc[k] for k in ("clip", "params", "librosa")},
                              separators=(",", ":"))[:-1]
            body = ",\n".join(json.dumps(fr, separators=(",", ":")) for fr in frames)
            text = head + ',"frames":[\n' + body + "\n]}\n"
            assert json.loads(text) == doc
            with open(out, "w") as f:
                f.write(text)
            total += len(text)
            print(f"{os.path.relpath(out, ROOT)}: {len(frames)} frames, {len(y)} samples, "
                  f"{len(text)} bytes; ref-impl ok; max rel diff vs float32-default calls {dflt:.1e}")
    print(f"total {total} bytes (numpy {np.__version__}, scipy {scipy.__version__}, "
          f"librosa {librosa.__version__})")
    assert total < 1_500_000


if __name__ == "__main__":
    sys.exit(main())
