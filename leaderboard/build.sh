#!/usr/bin/env bash
# Rebuild this folder's leaderboard: run the sweeps (finished runs are skipped), then the site.
# Needs the Wikipedia release prepared: cmhbench data prepare wiki --source ../shared/data/wiki
set -euo pipefail
cd "$(dirname "$0")/.."
for sweep in leaderboard/sweeps/*.yaml; do
    cmhbench sweep "$sweep" --device "${DEVICE:-auto}" --executor "${EXECUTOR:-local}" || true
done
cmhbench leaderboard build leaderboard/results --out leaderboard/site --title "cmhbench leaderboard" \
    --note "${NOTE:-2-core CPU, no GPU. toy: protocol v2 (toy-cnn pretrained on disjoint toy images, epoch budget 120, quick presets), three seeds (DCMH seed 1 diverged at epoch 103 and wrote no result); v1 results (AlexNet from scratch, 10 epochs) stay in their own tables. Wikipedia: deep methods at their published schedules (DCMH 500, SSAH 500, DAPH 80+220 epochs) where run so far (DAPH and DCMH 16/32/64 bits, SSAH 32 bits; seed 0); the older quick-preset 10-epoch runs are separate rows. Shallow methods run to convergence.}"
