# Sourced by tools/frame_nets.sh and tools/model_loco.sh, and read by the Makefile's MODEL_FLAGS: the
# shipped model's recipe spelled once, so that the left-out-corpus check trains what `make model` ships.
# The frame networks (`training/frame_model.py train`): gated, reading the 40 mel bands, a 40-epoch
# schedule, then their weights averaged over 48 more epochs at a constant rate (36 until 7 Dec 2026 night:
# 48 and 60 tied, each 0.2 points above 36 on cross-validated upset accuracy; docs/MODEL.md).
shipped_net_flags=(--gated --mel --epochs 40 --swa-epochs 48 --swa-lr 5e-4)
# The fusion (`emotiontap train`): speaker-grouped cross-validation, the hand-feature ensemble, simulated
# calls; the networks weighted 0.7 against the ensemble.
fusion_flags="--seed 1 --cv 5 --augment 4 --epochs 25 --ensemble 3 --hidden 128 --dropout 0.5 --calls 2"
shipped_net_weight=0.7
