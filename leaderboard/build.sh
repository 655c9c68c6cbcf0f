#!/usr/bin/env bash
# Rebuild this folder's leaderboard: run the sweeps (finished runs are skipped), then the site.
# Needs the Wikipedia release prepared: cmhbench data prepare wiki --source ../shared/data/wiki
set -euo pipefail
cd "$(dirname "$0")/.."
for sweep in leaderboard/sweeps/*.yaml; do
    cmhbench sweep "$sweep" --device "${DEVICE:-auto}" --executor "${EXECUTOR:-local}" || true
done
cmhbench leaderboard build leaderboard/results --out leaderboard/site --title "cmhbench leaderboard" \
    --note "${NOTE:-2-core CPU, no GPU. toy: protocol v2 (toy-cnn pretrained on disjoint toy images, epoch budget 120, quick presets), 16/32/64 bits, three seeds; v1 results (AlexNet from scratch, 10 epochs) stay in their own table. Wikipedia: protocol v2, every method at its published schedule (DAPH 80+220, DCMH 500 with its features preset, SSAH 500 epochs), 16/32/64 bits and three seeds (SSAH's recipe collapses on this single-label data: see its LabNet check); shallow methods are closed-form. The papers' own numbers (DCMH, SSAH) are on their method pages; they report MIRFLICKR-25K, IAPR TC-12, NUS-WIDE and MS-COCO, none of which is on this board yet. Every run carries its codes and is re-scored here, except the Wikipedia runs of DAPH, DCMH and SSAH written before codes were kept (unverified rows until they are run again; four SSAH runs so far).}"
