#!/usr/bin/env bash
# Rebuild this folder's leaderboard: run the sweeps (finished runs are skipped), then the site.
# Needs the Wikipedia release prepared: cmhbench data prepare wiki --source ../shared/data/wiki
set -euo pipefail
cd "$(dirname "$0")/.."
for sweep in leaderboard/sweeps/*.yaml; do
    cmhbench sweep "$sweep" --device "${DEVICE:-auto}" --executor "${EXECUTOR:-local}" || true
done
cmhbench leaderboard build leaderboard/results --out leaderboard/site --title "cmhbench leaderboard" \
    --note "${NOTE:-CPU budget (2-core CPU, no GPU): toy under its protocol (10 epochs per stage, quick presets; deep methods one seed); Wikipedia deep methods at 10 epochs with quick presets, one seed, 32 bits, far below their published schedules (DCMH 500, SSAH 500, DAPH 80+220 epochs). Shallow methods run to convergence.}"
