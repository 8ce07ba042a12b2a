#!/usr/bin/env python3
"""Learned frame-level candidate model for EmotionTap (PyTorch, CPU).

Reads the frame features exported by `emotiontap export` (frames.npy, clips.csv, meta.json),
builds level-free, causally normalised frame inputs, trains a small causal dilated 1-D CNN
(TDNN) with speech-gated attentive statistics pooling and two heads (7-way emotion, upset),
and evaluates it with the speaker-grouped folds of clips.csv.

Subcommands
  train     --fold K --seed S [--epochs E]   train on the other folds, predict fold K
  evaluate  [--fusion FILE]                  merge per-fold predictions, print the CV table,
                                             write oof_cnn.csv (and fusion figures)
  bench                                      time one epoch (sizing the runs)
  check-net --net FILE [train's recipe flags]  exit 1 unless FILE was trained with those flags
"""
import argparse
import csv
import glob
import json
import math
import os
import re
import sys
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
UPSET = [0, 1, 2, 5]  # angry, disgust, fear, sad
FPS = 50              # frame step 20 ms (hop 160 at 8 kHz)
WIN = 150             # 3 s: the live window (WindowConfig.length / frame step)
CONTEXT = 64          # frames before a window that its first pooled output can see (receptive field)

# ----------------------------------------------------------------------------------- data

def load_clips(export):
    rows = list(csv.DictReader(open(os.path.join(export, "clips.csv"))))
    c = {}
    for k in ["row", "entry", "variant", "upset", "fold", "frame_offset", "frames"]:
        c[k] = np.array([int(r[k]) for r in rows])
    c["emotion"] = np.array([EMOTIONS.index(r["emotion"]) for r in rows])
    c["corpus"] = np.array([r["corpus"] for r in rows])
    c["speaker"] = np.array([r["corpus"] + ":" + r["speaker"] for r in rows])
    return c


def pad_frames(export, clips):
    cols = json.load(open(os.path.join(export, "meta.json")))["frame_columns"]
    fr = np.load(os.path.join(export, "frames.npy"), mmap_mode="r")
    n = len(clips["row"])
    T = int(clips["frames"].max())
    P = np.zeros((n, T, fr.shape[1]), np.float32)
    valid = np.zeros((n, T), bool)
    for i in range(n):
        o, L = clips["frame_offset"][i], clips["frames"][i]
        P[i, :L] = fr[o:o + L]
        valid[i, :L] = True
    return P, valid, {c: j for j, c in enumerate(cols)}


def running_mean(x, gate, prior, k0=25.0, tau=125.0):
    """Causal, gated running mean per clip. x [N,T,D], gate [N,T] (0/1), prior [D].
    Cumulative mean with `k0` frames of prior weight (warm start from the training mean), turning
    into an exponential mean with time constant `tau` frames once enough frames were seen.
    Frames with gate 0 do not update it. Output m_t includes frame t."""
    N, T, D = x.shape
    m = np.broadcast_to(prior, (N, D)).astype(np.float64).copy()
    cnt = np.full(N, k0)
    out = np.empty((N, T, D), np.float32)
    for t in range(T):
        g = gate[:, t]
        cnt = cnt + g
        a = np.where(g > 0, np.maximum(1.0 / tau, 1.0 / cnt), 0.0)[:, None]
        m = m + a * (x[:, t] - m)
        out[:, t] = m
    return out


# What FrameFeatureExtractor leaves out of a frame the speech gate turns down (the live path of a model
# whose network was trained with --gated): only rms, energy, zcr, centroid and flux are computed.
GATED_OUT = ["mfcc%d" % i for i in range(13)] + ["chroma%d" % i for i in range(12)] + \
            ["pitch_hz", "voicing", "rolloff", "flatness", "slope", "low_high_db"]


def gate_frames(P, ci):
    """Frames as the gated live path analyses them: the GATED_OUT columns zero where the gate said silence.
    In place (the padded frames of a whole export are gigabytes); returns P."""
    silent = P[..., ci["speech"]] <= 0.5
    for c in GATED_OUT:
        P[..., ci[c]][silent] = 0.0
    return P


def pad_mel(export, clips):
    """frames_mel.npy (`emotiontap export --mel-bands`), padded like pad_frames: [N,T,bands]."""
    fr = np.load(os.path.join(export, "frames_mel.npy"), mmap_mode="r")
    n, T = len(clips["row"]), int(clips["frames"].max())
    M = np.zeros((n, T, fr.shape[1]), np.float32)
    for i in range(n):
        o, L = clips["frame_offset"][i], clips["frames"][i]
        M[i, :L] = fr[o:o + L]
    return M


def build_features(P, valid, ci, train_mask, stats=None, mel=None):
    """Frame inputs. Level-free: energy only relative to a causal decaying peak, plus its delta;
    pitch in semitones; channel-like features minus a causal speech-gated running mean warm-started
    from the training-set mean. Returns X [N,T,D] standardised with training-set stats, names."""
    speech = (P[:, :, ci["speech"]] > 0.5) & valid
    tr_sp = speech & train_mask[:, None]
    e = P[:, :, ci["energy_db"]].astype(np.float64)
    N, T = e.shape
    # causal peak, decaying 0.1 dB per frame (5 dB/s)
    peak = np.empty_like(e)
    pk = e[:, 0].copy()
    for t in range(T):
        pk = np.maximum(e[:, t], pk - 0.1)
        peak[:, t] = pk
    e_rel = np.clip(e - peak, -60, 0)
    de = np.zeros_like(e)
    de[:, 1:] = np.clip(e[:, 1:] - e[:, :-1], -20, 20)
    f0 = P[:, :, ci["pitch_hz"]]
    voiced = (f0 > 0) & valid
    st = np.where(voiced, 12 * np.log2(np.maximum(f0, 1) / 55.0), 0.0)
    st_prior = np.array([st[voiced & train_mask[:, None]].mean()]) if stats is None else stats["pitch_prior"]
    st_m = running_mean(st[:, :, None], voiced.astype(np.float64), st_prior)[:, :, 0]
    st_rel = np.where(voiced, st - st_m, 0.0)
    dst = np.zeros_like(st)
    both = voiced[:, 1:] & voiced[:, :-1]
    dst[:, 1:] = np.where(both, np.clip(st[:, 1:] - st[:, :-1], -6, 6), 0.0)

    chan = ["mfcc%d" % i for i in range(1, 13)] + ["zcr", "centroid", "rolloff", "flatness",
                                                  "slope", "low_high_db"]
    raw = ["zcr", "centroid", "rolloff", "flatness", "slope", "flux", "low_high_db", "voicing"] + \
          ["chroma%d" % i for i in range(12)]
    xc = np.stack([P[:, :, ci[c]] for c in chan], -1).astype(np.float64)
    prior = xc[tr_sp].mean(0) if stats is None else stats["channel_prior"]
    xc_n = xc - running_mean(xc, speech.astype(np.float64), prior)
    xr = np.stack([P[:, :, ci[c]] for c in raw], -1)
    feats = [e_rel[..., None], de[..., None], st[..., None], st_rel[..., None], dst[..., None],
             voiced[..., None].astype(np.float64), xc_n, xr]
    names = ["e_rel_peak", "d_energy", "pitch_st", "pitch_st_rel", "d_pitch_st", "voiced"] + \
            [c + "_cn" for c in chan] + raw
    if mel is not None:
        # Experimental (--mel): the mel bands in dB minus the same causal speech-gated running mean as the
        # channel-like features (a leg's own spectral envelope taken out), warm-started from the training mean.
        mel_prior = mel[tr_sp].mean(0).astype(np.float64) if stats is None else stats["mel_prior"]
        mel -= running_mean(mel, speech.astype(np.float64), mel_prior)  # in place: gigabytes
        feats.append(mel)
        names += ["mel%d_cn" % i for i in range(mel.shape[2])]
    # Each part cast on its own (the same numbers as casting the whole): no float64 copy of every input.
    X = np.concatenate([f.astype(np.float32, copy=False) for f in feats], -1)
    del feats, xc, xc_n, xr
    if stats is None:
        trv = valid & train_mask[:, None]
        mu = X[trv].mean(0)
        sd = X[trv].std(0) + 1e-5
        # pitch features: statistics over voiced frames, 0 (= mean) where unvoiced
        trvo = voiced & train_mask[:, None]
        for j in (2, 3, 4):
            mu[j] = X[:, :, j][trvo].mean()
            sd[j] = X[:, :, j][trvo].std() + 1e-5
        stats = {"pitch_prior": st_prior.astype(np.float64), "channel_prior": prior.astype(np.float64),
                 "input_mean": mu.astype(np.float32), "input_scale": sd.astype(np.float32)}
        if mel is not None:
            stats["mel_prior"] = mel_prior
    mu, sd = stats["input_mean"], stats["input_scale"]
    X = (X - mu) / sd
    for j in (2, 3, 4):
        X[:, :, j][~voiced] = 0.0
    X[~valid] = 0.0
    return X, speech, names, stats


def pick_test_window(speech, L):
    """Even start of the WIN-frame window with the most speech-gated frames (latest on ties)."""
    if L <= WIN:
        return 0
    c = np.concatenate([[0], np.cumsum(speech[:L])])
    starts = np.arange(0, L - WIN + 1, 2)
    s = c[starts + WIN] - c[starts]
    return int(starts[len(s) - 1 - np.argmax(s[::-1])])

# ---------------------------------------------------------------------------------- model

class CausalBlock(nn.Module):
    def __init__(self, cin, cout, k, d, drop, stride=1):
        super().__init__()
        self.pad = (k - 1) * d - (stride - 1)   # causal: output t sees inputs <= stride*t+stride-1
        self.conv = nn.Conv1d(cin, cout, k, dilation=d, stride=stride)
        self.norm = nn.LayerNorm(cout)   # per frame, over channels: streamable
        self.drop = nn.Dropout(drop)
        self.res = cin == cout and stride == 1

    def forward(self, x):
        y = self.conv(F.pad(x, (self.pad, 0)))
        y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        y = self.drop(F.relu(y))
        return x + y if self.res else y


class FrameNet(nn.Module):
    def __init__(self, nin, ch=48, drop=0.15):
        super().__init__()
        # first layer: k=4 over 20 ms frames, stride 2 -> 40 ms; then dilations 1,2,4,8 (40 ms units)
        # receptive field 4 + 2*2*(1+2+4+8) = 64 input frames = 1.28 s, strictly causal
        self.blocks = nn.Sequential(
            CausalBlock(nin, ch, 4, 1, drop, stride=2),
            CausalBlock(ch, ch, 3, 1, drop),
            CausalBlock(ch, ch, 3, 2, drop),
            CausalBlock(ch, ch, 3, 4, drop),
            CausalBlock(ch, ch, 3, 8, drop),
        )
        self.att = nn.Sequential(nn.Conv1d(ch, 32, 1), nn.Tanh(), nn.Conv1d(32, 1, 1))
        self.fc = nn.Sequential(nn.Linear(2 * ch, 64), nn.ReLU(), nn.Dropout(0.3))
        self.emo = nn.Linear(64, 7)
        self.ups = nn.Linear(64, 1)

    def encode(self, x):
        """x [B,T,D] -> [B,C,T/2]; output j reads input frames 2j-2 .. 2j+1."""
        return self.blocks(x.transpose(1, 2))

    def pool(self, h, mask):
        """Attentive statistics over the outputs where mask [B,T2] is set -> (emotion logits, upset logit)."""
        a = self.att(h).squeeze(1).masked_fill(~mask, -1e4)
        w = torch.softmax(a, 1).unsqueeze(1)
        mu = (w * h).sum(2)
        sd = torch.sqrt(((w * h * h).sum(2) - mu * mu).clamp_min(1e-5))
        z = self.fc(torch.cat([mu, sd], 1))
        return self.emo(z), self.ups(z).squeeze(1)

    def forward(self, x, mask):
        # x [B, CONTEXT+WIN, D]: CONTEXT frames of history (zeros before the clip's start), then the
        # window; mask [B, CONTEXT+WIN] bool (speech-gated valid frames). Only the window's outputs are
        # pooled, so a streaming leg that keeps its history computes exactly these numbers.
        h = self.encode(x)[:, :, CONTEXT // 2:]
        T2 = h.shape[2]
        pair = mask[:, CONTEXT:CONTEXT + 2 * T2].reshape(mask.shape[0], T2, 2)
        return self.pool(h, pair.any(2))

# ------------------------------------------------------------------------------- training

def make_batch(X, speech, lens, idx, rng, train, mel_warp=None):
    """Rows of CONTEXT history frames (zeros before the clip starts, as a live leg primes its
    history) and one WIN-frame window starting at an even frame (live windows start every 50).
    mel_warp (first mel input, width): in training, each row's mel bands resampled along the band axis
    by a factor drawn from 1 +- width (vocal tract length perturbation: other speakers' formants)."""
    B = len(idx)
    D = X.shape[2]
    R = CONTEXT + WIN
    xb = np.zeros((B, R, D), np.float32)
    vb = np.zeros((B, R), bool)
    sb = np.zeros((B, R), bool)
    for j, i in enumerate(idx):
        L = lens[i]
        if L > WIN:
            s = 2 * rng.integers(0, (L - WIN) // 2 + 1) if train else pick_test_window(speech[i], L)
        else:
            s = 0
        c = max(0, s - CONTEXT)
        e = min(L, s + WIN)
        o = CONTEXT - (s - c)
        xb[j, o:o + e - c] = X[i, c:e]
        n = e - s
        n -= n % 2   # an output is pooled only when both of its frames are in
        vb[j, CONTEXT:CONTEXT + n] = True
        sb[j, CONTEXT:CONTEXT + n] = speech[i, s:s + n]
    if train:  # SpecAugment-like masking inside the window: 2 time masks <= 15 frames, 2 feature masks <= 5
        for j in range(B):
            n = int(vb[j].sum())
            for _ in range(2):
                w = rng.integers(0, 16)
                if n > w:
                    t0 = CONTEXT + rng.integers(0, n - w + 1)
                    xb[j, t0:t0 + w] = 0.0
            for _ in range(2):
                w = rng.integers(0, 6)
                f0 = rng.integers(0, D - w + 1)
                xb[j, :, f0:f0 + w] = 0.0
    if train and mel_warp is not None:
        m0, width = mel_warp
        bands = D - m0
        grid = np.arange(bands, dtype=np.float32)
        for j in range(B):
            pos = np.clip(grid * rng.uniform(1 - width, 1 + width), 0, bands - 1)
            lo = np.floor(pos).astype(int)
            hi = np.minimum(lo + 1, bands - 1)
            frac = (pos - lo).astype(np.float32)
            mel = xb[j, :, m0:]
            xb[j, :, m0:] = mel[:, lo] * (1 - frac) + mel[:, hi] * frac
    m = sb & vb
    # As the live path counts: a window with under 5 speech outputs (frame pairs) pools over all of them.
    few = m[:, CONTEXT:].reshape(B, WIN // 2, 2).any(2).sum(1) < 5
    m[few] = vb[few]
    return torch.from_numpy(xb), torch.from_numpy(m)


def predict(model, X, speech, lens, idx, bs=256):
    model.eval()
    pe, pu = [], []
    with torch.no_grad():
        for b in range(0, len(idx), bs):
            xb, mb = make_batch(X, speech, lens, idx[b:b + bs], None, False)
            le, lu = model(xb, mb)
            pe.append(torch.softmax(le, 1).numpy())
            pu.append(torch.sigmoid(lu).numpy())
    return np.concatenate(pe), np.concatenate(pu)


def prepare(args, fold):
    clips = load_clips(args.export)
    P, valid, ci = pad_frames(args.export, clips)
    if args.gated:
        gate_frames(P, ci)
    mel = None
    if args.mel:
        mel = pad_mel(args.export, clips)
        if args.gated:  # the live path skips the mel bands of a frame the gate turns down
            mel[P[..., ci["speech"]] <= 0.5] = 0.0
    train_mask = clips["fold"] != fold
    X, speech, names, stats = build_features(P, valid, ci, train_mask, mel=mel)
    del P, mel
    return clips, X, speech, names, train_mask, stats


def cmd_train(args):
    t0 = time.time()
    clips, X, speech, names, train_mask, stats = prepare(args, args.fold)
    lens = clips["frames"]
    print(f"features {X.shape} ({len(names)} inputs) built in {time.time() - t0:.0f}s", flush=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = FrameNet(X.shape[2], ch=args.ch)
    nparam = sum(p.numel() for p in model.parameters())
    print(f"parameters {nparam}", flush=True)
    tr_entries = np.unique(clips["entry"][train_mask])
    # index of each (entry, variant)
    key = {(e, v): i for i, (e, v) in enumerate(zip(clips["entry"], clips["variant"]))}
    emo, ups = clips["emotion"], clips["upset"]
    ent_emo = {e: emo[key[(e, 0)]] for e in tr_entries}
    cnt = np.bincount([ent_emo[e] for e in tr_entries], minlength=7).astype(float)
    w = cnt.sum() / (7 * np.maximum(cnt, 1))
    w = torch.tensor(w / (w * cnt / cnt.sum()).sum(), dtype=torch.float32)  # mean weight 1
    pos = np.mean([ups[key[(e, 0)]] for e in tr_entries])
    pos_weight = torch.tensor((1 - pos) / pos)
    print("class counts", cnt.astype(int).tolist(), "weights", np.round(w.numpy(), 3).tolist(),
          f"upset prior {pos:.3f}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    # an epoch = every training entry once, each time in one of its 3 variants drawn at random
    steps_per_epoch = math.ceil(len(tr_entries) / args.bs)
    total = steps_per_epoch * args.epochs
    warm = steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else
        0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    nvar = 3
    mel_warp = None
    if args.mel_warp > 0:
        if "mel0_cn" not in names:
            sys.exit("--mel-warp needs --mel")
        mel_warp = (names.index("mel0_cn"), args.mel_warp)
    # Stochastic weight averaging (Izmailov et al. 2018): after the schedule, args.swa_epochs more at a
    # constant learning rate, averaging the weights at each epoch's end. The average is one network of
    # the same shape (no dearer to run live), written to <out>; the schedule's last weights go to
    # <out>/before-swa/ (the recipe before 7 Dec 2026 afternoon, for the comparison).
    swa = torch.optim.swa_utils.AveragedModel(model) if args.swa_epochs > 0 else None
    tag = f"f{args.fold}_s{args.seed}" if args.fold >= 0 else f"all_s{args.seed}"
    run = Run(clips, X, speech, lens, stats, names, args, tag, nparam)
    for ep in range(args.epochs + args.swa_epochs):
        if ep == args.epochs:
            for group in opt.param_groups:
                group["lr"] = args.swa_lr
            save_net(model, os.path.join(args.out, "before-swa"), run, tag)
        model.train()
        te = time.time()
        perm = rng.permutation(tr_entries)
        var = rng.integers(0, nvar, len(perm))
        idx_all = np.array([key.get((e, v), key[(e, 0)]) for e, v in zip(perm, var)])
        tot = 0.0
        for b in range(steps_per_epoch):
            idx = idx_all[b * args.bs:(b + 1) * args.bs]
            xb, mb = make_batch(X, speech, lens, idx, rng, True, mel_warp)
            ye = torch.from_numpy(emo[idx])
            yu = torch.from_numpy(ups[idx]).float()
            le, lu = model(xb, mb)
            l1 = F.cross_entropy(le, ye, weight=w, label_smoothing=0.1)
            l2 = F.binary_cross_entropy_with_logits(lu, yu * 0.9 + 0.05, pos_weight=pos_weight)
            loss = l1 + args.upset_w * l2
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if ep < args.epochs:
                sched.step()
            tot += loss.item()
        if ep >= args.epochs:
            swa.update_parameters(model)
            averaged = ep + 1 - args.epochs
            if averaged in args.swa_snapshots and averaged < args.swa_epochs:
                # the running average so far, beside the final one: how many epochs the average needs
                save_net(swa.module, os.path.join(args.out, f"swa-{averaged}"), run,
                         averaged_label(tag, averaged, args.swa_lr))
        msg = f"epoch {ep + 1}/{args.epochs + args.swa_epochs} loss {tot / steps_per_epoch:.4f} {time.time() - te:.1f}s"
        if args.monitor and ((ep + 1) % 10 == 0 or ep + 1 == args.epochs):
            te_idx = np.where((clips["fold"] == args.fold) & (clips["variant"] == 0))[0]
            pe, pu = predict(model, X, speech, lens, te_idx)
            acc7 = (pe.argmax(1) == emo[te_idx]).mean()
            accu = ((pe[:, UPSET].sum(1) > 0.5) == ups[te_idx]).mean()
            msg += f" | held-out v0 acc7 {acc7:.3f} upset {accu:.3f}"
        print(msg, flush=True)
        if args.max_epochs_run and ep + 1 >= args.max_epochs_run:
            break
    if swa is None or swa.n_averaged.item() == 0:  # no SWA, or --max-epochs-run stopped before it
        save_net(model, args.out, run, tag)
    else:
        save_net(swa.module, args.out, run, averaged_label(tag, args.swa_epochs, args.swa_lr))
    print(f"total {time.time() - t0:.0f}s", flush=True)


class Run(NamedTuple):
    """What a training run predicts with and records: the clips and their inputs, the input statistics,
    the command's arguments, its file tag (f0_s1, all_s1) and the network's parameter count."""
    clips: dict
    X: np.ndarray
    speech: np.ndarray
    lens: np.ndarray
    stats: dict
    names: list
    args: argparse.Namespace
    tag: str
    nparam: int


def averaged_label(tag, epochs, lr):
    """The note a network with averaged weights carries (`averaged_from` reads it back)."""
    return f"{tag}, then {epochs} epochs at lr {lr:g} with their weights averaged"


def averaged_from(training):
    """(epochs, lr) from a network's training note written with averaged_label, or None."""
    found = re.search(r"then (\d+) epochs at lr (\S+) with their weights averaged", training)
    return (int(found.group(1)), float(found.group(2))) if found else None


def schedule_from(training):
    """The schedule's epoch count from a network's training note (`net_json` writes `--epochs N`), or None."""
    found = re.search(r"--epochs (\d+)", training)
    return int(found.group(1)) if found else None


def save_net(model, out, run, label):
    """One trained network: its held-out predictions (a fold's), its weights and its Swift JSON."""
    clips, X, speech, lens, stats, names, args, tag, nparam = run
    os.makedirs(out, exist_ok=True)
    if args.fold >= 0:
        te_idx = np.where((clips["fold"] == args.fold) & (clips["variant"] <= 1))[0]
        pe, pu = predict(model, X, speech, lens, te_idx)
        fn = os.path.join(out, f"pred_{tag}.npz")
        np.savez(fn, entry=clips["entry"][te_idx], variant=clips["variant"][te_idx], pe=pe, pu=pu,
                 epochs=args.epochs, nparam=nparam)
        print(f"wrote {fn}", flush=True)
    torch.save(model.state_dict(), os.path.join(out, f"model_{tag}.pt"))
    net = os.path.join(out, f"frame_net_{tag}.json")
    with open(net, "w") as fh:
        json.dump(net_json(model, stats, names, args, label), fh, sort_keys=True)
    print(f"wrote {net}", flush=True)

# ----------------------------------------------------------------------- Swift interchange

def packed(a):
    """PackedFloats in the Swift model file: little-endian float32, base64."""
    import base64
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def net_json(model, stats, names, args, label):
    """The network and its input statistics as Swift's `FrameNet` decodes them. Convolution weights
    as [out, tap * in + in_channel] (the im2col layout the Swift GEMM reads)."""
    model.eval()
    blocks = []
    for b in model.blocks:
        w = b.conv.weight.detach().numpy()            # [out, in, k]
        blocks.append({
            "inputs": int(w.shape[1]), "outputs": int(w.shape[0]), "kernel": int(w.shape[2]),
            "dilation": int(b.conv.dilation[0]), "stride": int(b.conv.stride[0]), "residual": bool(b.res),
            "weights": packed(w.transpose(0, 2, 1).reshape(w.shape[0], -1)),
            "bias": packed(b.conv.bias.detach().numpy()),
            "normScale": packed(b.norm.weight.detach().numpy()), "normShift": packed(b.norm.bias.detach().numpy()),
            "normEpsilon": float(b.norm.eps)})

    def dense(lin, w=None):
        w = lin.weight.detach().numpy() if w is None else w
        return {"inputs": int(w.shape[1]), "outputs": int(w.shape[0]), "weights": packed(w),
                "bias": packed(lin.bias.detach().numpy())}

    att1, att2 = model.att[0], model.att[2]
    return {
        "inputs": names, "context": CONTEXT, "windowFrames": WIN,
        "inputMean": packed(stats["input_mean"]), "inputScale": packed(stats["input_scale"]),
        "pitchPrior": float(stats["pitch_prior"][0]), "channelPrior": [float(x) for x in stats["channel_prior"]],
        **({"melPrior": [float(x) for x in stats["mel_prior"]]} if "mel_prior" in stats else {}),
        "blocks": blocks,
        "attention": dense(att1, att1.weight.detach().numpy()[:, :, 0]),
        "attentionScore": dense(att2, att2.weight.detach().numpy()[:, :, 0]),
        "hidden": dense(model.fc[0]), "emotionHead": dense(model.emo), "upsetHead": dense(model.ups),
        "gatedFrames": bool(args.gated),
        "training": f"frame_model.py train --fold {args.fold} --seed {args.seed} --epochs {args.epochs} "
                    f"--ch {args.ch}{' --gated' if args.gated else ''}{' --mel' if args.mel else ''}"
                    f"{f' --mel-warp {args.mel_warp:g}' if args.mel_warp else ''} ({label})"}


def stream_windows(model, x, speech):
    """What a live leg reports for one stream of frames x [T,D] (standardised inputs) with its speech
    flags: history primed with CONTEXT zero frames, a window every 50 frames once 150 are in (or one
    short window when the stream is shorter). Returns [(start, end, probabilities[7], upset_head)]."""
    T = x.shape[0]
    row = np.zeros((1, CONTEXT + T, x.shape[1]), np.float32)
    row[0, CONTEXT:] = x
    with torch.no_grad():
        h = model.encode(torch.from_numpy(row))
    ends = list(range(WIN, T + 1, 50)) if T >= WIN else [T]
    out = []
    for e in ends:
        s = max(0, e - WIN)
        n = (e - s) // 2
        j0 = (CONTEXT + s) // 2
        hw = h[:, :, j0:j0 + n]
        m = speech[s:s + 2 * n].reshape(n, 2).any(1)
        if m.sum() < 5:
            m[:] = True
        with torch.no_grad():
            le, lu = model.pool(hw, torch.from_numpy(m[None]))
        out.append((s, e, torch.softmax(le, 1)[0].numpy(), float(torch.sigmoid(lu)[0])))
    return out


def cmd_golden(args):
    """Golden vectors for the Swift tests: the frames of a few clips as one stream, the inputs the
    network reads, and every window's output, with the network itself."""
    clips = load_clips(args.export)
    rows = list(csv.DictReader(open(os.path.join(args.export, "clips.csv"))))
    want = [w for w in args.clips.split(",") if w]
    pick = [i for w in want for i, r in enumerate(rows) if r["variant"] == "0" and os.path.basename(r["path"]).startswith(w)]
    if len(pick) != len(want):
        sys.exit(f"golden: found {len(pick)} of the clips {want} in {args.export}/clips.csv")
    net = json.load(open(args.net))
    fr = np.load(os.path.join(args.export, "frames.npy"), mmap_mode="r")
    raw = np.concatenate([np.asarray(fr[clips["frame_offset"][i]:clips["frame_offset"][i] + clips["frames"][i]]) for i in pick])
    cols = json.load(open(os.path.join(args.export, "meta.json")))["frame_columns"]
    ci = {c: j for j, c in enumerate(cols)}
    if net.get("gatedFrames"):
        gate_frames(raw, ci)
    unpack = lambda t: np.frombuffer(__import__("base64").b64decode(t), "<f4")
    stats = {"pitch_prior": np.array([net["pitchPrior"]]), "channel_prior": np.array(net["channelPrior"]),
             "input_mean": unpack(net["inputMean"]), "input_scale": unpack(net["inputScale"])}
    mel = None
    if "melPrior" in net:  # a --mel network: the clips' mel bands too, as the live path leaves them
        stats["mel_prior"] = np.array(net["melPrior"])
        fm = np.load(os.path.join(args.export, "frames_mel.npy"), mmap_mode="r")
        mel = np.concatenate([np.asarray(fm[clips["frame_offset"][i]:clips["frame_offset"][i] + clips["frames"][i]])
                              for i in pick]).astype(np.float32)
        if net.get("gatedFrames"):
            mel[raw[:, ci["speech"]] <= 0.5] = 0.0
    mel_bands = None if mel is None else packed(mel)  # before build_features normalises them in place
    T = raw.shape[0]
    X, speech, names, _ = build_features(raw[None].astype(np.float32), np.ones((1, T), bool), ci,
                                         np.ones(1, bool), stats, mel=None if mel is None else mel[None])
    assert names == net["inputs"]
    model = load_net(net)
    wins = stream_windows(model, X[0], speech[0])
    golden = {"clips": want, "clipFrames": [int(clips["frames"][i]) for i in pick], "frameColumns": cols, "frames": packed(raw), "inputs": packed(X[0]),
              **({"melBands": mel_bands} if mel_bands is not None else {}),
              "windows": [{"start": s, "end": e, "probabilities": [float(v) for v in p], "upsetHead": u}
                          for s, e, p, u in wins],
              "net": net}
    with open(args.golden, "w") as fh:
        json.dump(golden, fh, sort_keys=True)
    print(f"wrote {args.golden}: {T} frames, {len(wins)} windows")


def load_net(net):
    """A FrameNet with the weights of a `net_json` file (the round trip the golden vectors check)."""
    unpack = lambda t: torch.from_numpy(np.frombuffer(__import__("base64").b64decode(t), "<f4").copy())
    b0 = net["blocks"][0]
    model = FrameNet(b0["inputs"], ch=b0["outputs"])
    with torch.no_grad():
        for blk, b in zip(model.blocks, net["blocks"]):
            w = unpack(b["weights"]).reshape(b["outputs"], b["kernel"], b["inputs"]).permute(0, 2, 1)
            blk.conv.weight.copy_(w)
            blk.conv.bias.copy_(unpack(b["bias"]))
            blk.norm.weight.copy_(unpack(b["normScale"]))
            blk.norm.bias.copy_(unpack(b["normShift"]))
        for lin, d, conv in ((model.att[0], net["attention"], True), (model.att[2], net["attentionScore"], True),
                             (model.fc[0], net["hidden"], False), (model.emo, net["emotionHead"], False),
                             (model.ups, net["upsetHead"], False)):
            w = unpack(d["weights"]).reshape(d["outputs"], d["inputs"])
            lin.weight.copy_(w[:, :, None] if conv else w)
            lin.bias.copy_(unpack(d["bias"]))
    model.eval()
    return model

# ----------------------------------------------------------------------------- evaluation

def roc_auc(y, s):
    y = np.asarray(y).astype(bool)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = np.asarray(s)[order]
    # average ranks for ties
    i = 0
    r = np.arange(1, len(s) + 1, dtype=float)
    while i < len(ss):
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        r[i:j + 1] = (i + j + 2) / 2.0
        i = j + 1
    ranks[order] = r
    npos, nneg = y.sum(), (~y).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    return (ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg)


def macro_f1(y, p, labels):
    f = []
    for c in labels:
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f))


def calm_recall_at(y, s, target=0.80):
    """Threshold = largest one keeping upset recall >= target; recall of calm clips there."""
    pos = np.sort(s[y == 1])[::-1]
    k = int(math.ceil(target * len(pos)))
    thr = pos[k - 1]
    return float(np.mean(s[y == 0] < thr)), float(thr)


def metrics(y_emo, y_up, pe, pu):
    pred7 = pe.argmax(1)
    labels = sorted(set(y_emo.tolist()))
    r = {"n": len(y_up), "acc7": float(np.mean(pred7 == y_emo)),
         "f1_7": macro_f1(y_emo, pred7, labels), "base": float(np.mean(y_up))}
    for tag, s in (("sum", pe[:, UPSET].sum(1)), ("head", pu)):
        p = (s > 0.5).astype(int)
        r[f"acc_{tag}"] = float(np.mean(p == y_up))
        r[f"f1_{tag}"] = macro_f1(y_up, p, [0, 1])
        r[f"auc_{tag}"] = roc_auc(y_up, s)
        r[f"bacc_{tag}"] = 0.5 * (np.mean(p[y_up == 1] == 1) + np.mean(p[y_up == 0] == 0))
        r[f"calm80_{tag}"] = calm_recall_at(y_up, s)[0]
    return r


def table(lines, title, groups):
    hdr = (f"{'subset':<16}{'n':>6}{'base':>7}{'upAcc':>7}{'upF1':>7}{'AUC':>7}{'bAcc':>7}"
           f"{'calm@80':>8}{'acc7':>7}{'F1_7':>7}")
    lines.append(title)
    lines.append(hdr)
    for name, r in groups:
        for tag in ("sum", "head"):
            lines.append(f"{(name + ' ' + tag):<16}{r['n']:>6}{r['base']:>7.3f}{r['acc_' + tag]:>7.3f}"
                         f"{r['f1_' + tag]:>7.3f}{r['auc_' + tag]:>7.3f}{r['bacc_' + tag]:>7.3f}"
                         f"{r['calm80_' + tag]:>8.3f}{r['acc7']:>7.3f}{r['f1_7']:>7.3f}")
    lines.append("")


def load_preds(out, seeds=None, folds=None):
    files = sorted(glob.glob(os.path.join(out, "pred_f*_s*.npz")))
    acc = {}
    runs = []
    for fn in files:
        b = os.path.basename(fn)[:-4].split("_")
        f, s = int(b[1][1:]), int(b[2][1:])
        if (seeds is not None and s not in seeds) or (folds is not None and f not in folds):
            continue
        d = np.load(fn)
        runs.append((f, s, int(d["epochs"]), int(d["nparam"])))
        for e, v, pe, pu in zip(d["entry"], d["variant"], d["pe"], d["pu"]):
            acc.setdefault((int(e), int(v)), []).append((pe, pu))
    return acc, runs


def cmd_evaluate(args):
    clips = load_clips(args.export)
    key = {(e, v): i for i, (e, v) in enumerate(zip(clips["entry"], clips["variant"]))}
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    folds = [int(s) for s in args.folds.split(",")] if args.folds else None
    acc, runs = load_preds(args.out, seeds, folds)
    lines = ["runs (fold, seed, epochs, params): " + str(runs), ""]
    keys = sorted(acc)
    PE = np.array([np.mean([a[0] for a in acc[k]], 0) for k in keys])
    PU = np.array([np.mean([a[1] for a in acc[k]]) for k in keys])
    nseed = np.array([len(acc[k]) for k in keys])
    lines.append(f"OOF rows {len(keys)}; seeds per row min {nseed.min()} max {nseed.max()}")
    ent = np.array([k[0] for k in keys])
    var = np.array([k[1] for k in keys])
    ii = np.array([key[k] for k in keys])
    ye, yu, corp = clips["emotion"][ii], clips["upset"][ii], clips["corpus"][ii]

    def report(pe, pu, title):
        for v in (0, 1):
            groups = []
            for cname in ("all", "crema-d", "ravdess", "tess"):
                m = (var == v) & ((corp == cname) | (cname == "all"))
                if m.sum():
                    groups.append((cname, metrics(ye[m], yu[m], pe[m], pu[m])))
            table(lines, f"{title} — variant {v} ({'as stored' if v == 0 else 'phone channel copy'})",
                  groups)

    report(PE, PU, "CNN")
    if args.write_oof:
        with open(os.path.join(args.out, "oof_cnn.csv"), "w", newline="") as fh:
            wr = csv.writer(fh)
            wr.writerow(["entry", "variant"] + ["p_" + e for e in EMOTIONS] + ["p_upset_head"])
            for k, pe, pu in zip(keys, PE, PU):
                wr.writerow([k[0], k[1]] + [f"{x:.6f}" for x in pe] + [f"{pu:.6f}"])
        lines.append(f"wrote {os.path.join(args.out, 'oof_cnn.csv')}")
    if args.fusion and os.path.exists(args.fusion):
        other = {}
        for r in csv.DictReader(open(args.fusion)):
            other[(int(r["entry"]), int(r["variant"]))] = (
                np.array([float(r["p_" + e]) for e in EMOTIONS]), float(r["p_upset_head"]))
        have = np.array([k in other for k in keys])
        lines.append(f"fusion: {have.sum()} of {len(keys)} OOF rows present in {args.fusion}")
        if have.sum():
            OE = np.array([other[k][0] if k in other else np.full(7, np.nan) for k in keys])
            OU = np.array([other[k][1] if k in other else np.nan for k in keys])
            sel = have
            ent, var, ye, yu, corp = ent[sel], var[sel], ye[sel], yu[sel], corp[sel]
            for wc, title in ((None, "hand-feature model alone"), (0.5, "fusion 0.5/0.5"),
                              (0.3, "fusion 0.3 CNN / 0.7 hand")):
                if wc is None:
                    pe, pu = OE[sel], OU[sel]
                else:
                    pe = wc * PE[sel] + (1 - wc) * OE[sel]
                    pu = wc * PU[sel] + (1 - wc) * OU[sel]
                report(pe, pu, title)
    txt = "\n".join(lines)
    print(txt)
    if args.report:
        open(args.report, "w").write(txt + "\n")


def cmd_check_net(args):
    """Exit 1, saying why, unless --net was trained with the recipe flags given here (--epochs, --gated,
    --mel, --swa-epochs, --swa-lr): the recipe scripts keep networks already on disk only if they pass."""
    try:
        with open(args.net) as fh:
            net = json.load(fh)
    except (OSError, ValueError) as e:
        sys.exit(f"{args.net}: not a readable network file ({e})")
    training = net.get("training", "") if isinstance(net, dict) else ""
    if not training:
        sys.exit(f"{args.net}: not a network file of frame_model.py (no training note)")
    have_swa = averaged_from(training)
    want_swa = (args.swa_epochs, args.swa_lr) if args.swa_epochs else None
    problems = []
    if schedule_from(training) != args.epochs:
        problems.append(f"a {args.epochs}-epoch schedule")
    if bool(net.get("gatedFrames")) != args.gated:
        problems.append("gated frames" if args.gated else "not gated frames")
    if bool(net.get("melPrior")) != args.mel:
        problems.append("the mel bands" if args.mel else "no mel bands")
    if have_swa != want_swa:
        problems.append(f"weights averaged over {args.swa_epochs} epochs at lr {args.swa_lr:g}" if want_swa
                        else "weights not averaged")
    if "--mel-warp" in training:
        problems.append("no mel warp")
    if problems:
        sys.exit(f"{args.net}: not the recipe asked for (wanted: {', '.join(problems)}); it says: {training}")


def cmd_bench(args):
    args.max_epochs_run = 1
    cmd_train(args)


def epoch_counts(text):
    """--swa-snapshots: comma-separated positive epoch counts."""
    try:
        counts = {int(x) for x in text.split(",") if x.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of epoch counts like 12,24") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"'{text}': epoch counts are 1 or more")
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", choices=["train", "evaluate", "bench", "golden", "check-net"])
    ap.add_argument("--export", default=".build/model/export")
    ap.add_argument("--out", default=".build/model/cnn")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--bs", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=1e-2)
    ap.add_argument("--ch", type=int, default=48)
    ap.add_argument("--gated", action="store_true",
                    help="train on frames as the speech gate leaves them (the live path then skips the "
                         "full analysis of silent frames)")
    ap.add_argument("--mel", action="store_true",
                    help="also read frames_mel.npy (export --mel-bands), leg-normalised (the shipped recipe)")
    ap.add_argument("--swa-epochs", type=int, default=0,
                    help="after the schedule, this many epochs at --swa-lr with the weights averaged at each "
                         "epoch's end (stochastic weight averaging): the network written to <out>; the "
                         "schedule's last weights go to <out>/before-swa/")
    ap.add_argument("--swa-lr", type=float, default=5e-4)
    ap.add_argument("--swa-snapshots", type=epoch_counts, default=set(),
                    help="also write the average after these many SWA epochs to <out>/swa-N/ (e.g. 12,24)")
    ap.add_argument("--mel-warp", type=float, default=0.0,
                    help="training only: resample each row's mel bands by a factor in 1 +- this (e.g. 0.1)")
    ap.add_argument("--upset-w", type=float, default=0.5)
    ap.add_argument("--monitor", action="store_true")
    ap.add_argument("--max-epochs-run", type=int, default=0)
    ap.add_argument("--seeds", default="")
    ap.add_argument("--folds", default="")
    ap.add_argument("--fusion", default=".build/model/oof-features.csv")
    ap.add_argument("--write-oof", action="store_true")
    ap.add_argument("--report", default="")
    ap.add_argument("--net", default=".build/model/cnn/frame_net_all_s1.json")
    ap.add_argument("--golden", default="Tests/EmotionTestSupport/Goldens/frame-network/frame-net.json")
    ap.add_argument("--clips", default="1009_DFA_ANG_XX,1011_IEO_NEU_XX,1015_ITH_SAD_XX,1022_IWW_NEU_XX")
    args = ap.parse_args()
    if not 0 <= args.mel_warp < 0.5:
        ap.error("--mel-warp must be in [0, 0.5)")
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "bench": cmd_bench, "golden": cmd_golden,
                "check-net": cmd_check_net}
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
