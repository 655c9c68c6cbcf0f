#!/usr/bin/env bash
# Rebuild this folder's leaderboard: run the sweeps (finished runs are skipped), then the site.
# Needs the Wikipedia release prepared: cmhbench data prepare wiki --source ../shared/data/wiki
set -euo pipefail
cd "$(dirname "$0")/.."
for sweep in leaderboard/sweeps/*.yaml; do
    cmhbench sweep "$sweep" --device "${DEVICE:-auto}" --executor "${EXECUTOR:-local}" || true
done
# The retrieval-cost page: `cmhbench retrieval-bench` writes the file (minutes; rerun it to measure
# another machine, and keep each machine's file):
#   cmhbench retrieval-bench --items 10000,100000,1000000,10000000 --bits 16,32,64,128 \
#       --out leaderboard/retrieval/synthetic-top100.json
cmhbench leaderboard build leaderboard/results --out leaderboard/site --title "cmhbench leaderboard" \
    --retrieval leaderboard/retrieval/synthetic-top100.json \
    --note "${NOTE:-Measured on a 2-core AMD EPYC VM (torch on the CPU), no GPU. toy: protocol v2 (toy-cnn pretrained on disjoint toy images, epoch budget 120, quick presets), 16/32/64 bits, three seeds; the CLIP methods (DCHMT, MITH, DSPH) fine-tune both towers of a tiny CLIP pretrained on disjoint toy pairs, at 32 bits. Wikipedia: protocol v2, every method at its published schedule (DAPH 80+220, DCMH 500 with its features preset, SSAH 500 epochs), 16/32/64 bits and three seeds (SSAH's recipe collapses on this single-label data: see its LabNet check); shallow methods are closed-form. The papers' own numbers (DCMH, SSAH) are on their method pages; they report MIRFLICKR-25K, IAPR TC-12, NUS-WIDE and MS-COCO, none of which is on this board yet. Every run carries its codes and is re-scored here; the Wikipedia runs of DAPH, DCMH and SSAH written before codes were kept have all been run again with their codes, and toy v1's codeless runs (a retired generator and protocol that today's code cannot run) were withdrawn.}"
