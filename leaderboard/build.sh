#!/usr/bin/env bash
# Rebuild this folder's leaderboard: run the sweeps (finished runs are skipped), then the site.
# Needs the Wikipedia release prepared: cmhbench data prepare wiki --source ../shared/data/wiki
set -euo pipefail
cd "$(dirname "$0")/.."
for sweep in leaderboard/sweeps/*.yaml; do
    cmhbench sweep "$sweep" --device "${DEVICE:-auto}" --executor "${EXECUTOR:-local}" || true
done
cmhbench leaderboard build leaderboard/results --out leaderboard/site --title "cmhbench leaderboard" \
    --note "${NOTE:-2-core CPU, no GPU. toy: protocol v2 (toy-cnn pretrained on disjoint toy images, epoch budget 120, quick presets), three seeds (DCMH seed 1 diverged at epoch 103 and wrote no result); v1 results (AlexNet from scratch, 10 epochs) stay in their own tables. Wikipedia: protocol v2, every method at its published schedule (DAPH 80+220, DCMH 500 with its features preset, SSAH 500 epochs), 16/32/64 bits and three seeds (SSAH's recipe collapses on this single-label data: see its LabNet check); shallow methods run to convergence.}"
