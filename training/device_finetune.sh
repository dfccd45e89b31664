#!/usr/bin/env bash
# One call of the device tool (an H100/H200 lent for ~15 min of device time in all, start-up included):
# fine-tune both shipped generators from training/checkpoints/ on whole 1024² windows, batch 4 (+ mirror),
# and leave under $OUT only what the tool brings back (at most 8 files, 16 MiB each, 2 folders deep):
#   $OUT/<model>/{last.pt,best.pt,train.log} and $OUT/<model>.out (the processes' own output).
# The machine has no GDAL: build the corpus caches here first and carry them, e.g.
#   python -m terrain.corpus --cache runs/corpus.npz; python -m terrain.corpus --split heldout --cache runs/heldout.npz
#   run(command="MINUTES=8 training/device_finetune.sh --loss pearson=1,slope=0.5",
#       carry=["runs/corpus.npz", "runs/heldout.npz"], timeout_s=600)
# Extra options go to training.train (the last of a repeated option wins). Back here: export, tune_runtime,
# make validate, make demo, and the card's hardware line says which GPU (training/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
runs=${RUNS:-/tmp/device_runs}
FINETUNE='training/checkpoints/{model}_last.pt' LOGDIR="$OUT" PYTHON=${PYTHON:-python3} \
    training/train_gpu.sh "${MINUTES:-8}" "$runs" --crop 1024 --batch 4 --lr 3e-4 "$@"
status=$?
for model in pix2pixcc mrfed; do  # what exists comes back, even from a run that failed part-way
    mkdir -p "$OUT/$model"
    for file in last.pt best.pt train.log; do
        [[ -f "$runs/$model/$file" ]] && cp "$runs/$model/$file" "$OUT/$model/"
    done
done
exit $status
