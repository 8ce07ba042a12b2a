#!/usr/bin/env python3
"""Build the demo "call" config/samples/sample-call.wav from CREMA-D clips.

Usage: python3 tools/make_sample_call.py [CORPORA_DIR]   (default: ../shared/corpora,
relative to the repo root)

One CREMA-D speaker (actor 1054) is strung together: first 5 calm clips (neutral/happy),
then 6 angry clips, with 0.3 s of digital silence (mu-law 0xFF = linear 0) between clips.
The mu-law bytes of the source clips are copied unchanged (no decode/re-encode), so the
output is 8 kHz mono G.711 mu-law WAV (format tag 7) with fmt (18 bytes), fact and data chunks.

Clips used (all crema-d/, speaker 1054, in this order):
  calm : 1054_TSI_NEU_XX, 1054_IOM_HAP_XX, 1054_IWW_NEU_XX, 1054_DFA_HAP_XX, 1054_IEO_NEU_XX
  angry: 1054_IOM_ANG_XX, 1054_IWW_ANG_XX, 1054_TSI_ANG_XX, 1054_DFA_ANG_XX, 1054_TAI_ANG_XX,
         1054_IWL_ANG_XX
Total length is about 26.2 s (calm part ends at about 11.7 s).

CREMA-D: Cao et al., "CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset",
https://github.com/CheyneyComputerScience/CREMA-D, Open Database License 1.0 / DbCL 1.0.
"""
import os
import struct
import sys

CALM = ["1054_TSI_NEU_XX", "1054_IOM_HAP_XX", "1054_IWW_NEU_XX",
        "1054_DFA_HAP_XX", "1054_IEO_NEU_XX"]
ANGRY = ["1054_IOM_ANG_XX", "1054_IWW_ANG_XX", "1054_TSI_ANG_XX",
         "1054_DFA_ANG_XX", "1054_TAI_ANG_XX", "1054_IWL_ANG_XX"]
SR = 8000
GAP_S = 0.3
SILENCE = b"\xff"  # mu-law code for linear 0


def read_mulaw(path):
    """Return the raw mu-law data bytes of a mono 8 kHz format-7 WAV."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise ValueError(f"{path}: not RIFF/WAVE")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(buf):
        cid, size = buf[pos:pos + 4], struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        body = buf[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: missing fmt or data chunk")
    tag, ch, sr, _, _, bits = fmt
    if (tag, ch, sr, bits) != (7, 1, SR, 8):
        raise ValueError(f"{path}: expected mu-law mono 8 kHz 8-bit, got {fmt}")
    return data


def write_mulaw(path, data):
    n = len(data)
    fmt = struct.pack("<HHIIHHH", 7, 1, SR, SR, 1, 8, 0)  # 18 bytes, cbSize = 0
    fact = struct.pack("<I", n)
    pad = b"\x00" if n & 1 else b""
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", n) + data + pad)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    corpora = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "corpora")
    gap = SILENCE * int(round(GAP_S * SR))
    parts = []
    for i, name in enumerate(CALM + ANGRY):
        if i:
            parts.append(gap)
        parts.append(read_mulaw(os.path.join(corpora, "crema-d", name + ".wav")))
    data = b"".join(parts)
    out = os.path.join(root, "config", "samples", "sample-call.wav")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_mulaw(out, data)
    print(f"wrote {out}: {len(data) / SR:.2f} s, {len(data)} samples")


if __name__ == "__main__":
    main()
