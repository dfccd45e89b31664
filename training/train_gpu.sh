#!/usr/bin/env bash
# Both generators at once on one GPU machine (16 cores: 7 data workers each), from the packed corpus.
#   python3 -m terrain.corpus --cache runs/corpus.npz; python3 -m terrain.corpus --split heldout --cache runs/heldout.npz
#   training/train_gpu.sh MINUTES OUT [extra train.py options]
#   FINETUNE='training/checkpoints/{model}_last.pt' training/train_gpu.sh ...: each model fine-tunes that
#   checkpoint ({model} replaced by its name), e.g. with --crop 1024 --batch 4 --lr 3e-4
#   PIX2PIXCC_OPTIONS / MRFED_OPTIONS: options for that model alone, after the common ones (the last one wins),
#   e.g. MRFED_OPTIONS='--loss pearson=1,slope=0.5' to keep each model's own fine-tune loss
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=$1; out=$2; shift 2
python=${PYTHON:-python3}
logs=${LOGDIR:-$out}   # the processes' own output (tracebacks included)
common=(--minutes "$minutes" --workers 7 --threads 2 --corpus-cache runs/corpus.npz --heldout-cache runs/heldout.npz
        --eval-minutes 2 --flip-double "$@")
mkdir -p "$out" "$logs"
start() {  # MODEL
    local from=() own=() own_var="${1^^}_OPTIONS"
    if [[ -n "${FINETUNE:-}" ]]; then from=(--finetune "${FINETUNE//\{model\}/$1}"); fi
    read -ra own <<< "${!own_var:-}"
    $python -m training.train --model "$1" --out "$out/$1" "${common[@]}" "${from[@]}" "${own[@]}" > "$logs/$1.out" 2>&1 &
}
start pix2pixcc
start mrfed
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
tail -n 6 "$logs"/pix2pixcc.out "$logs"/mrfed.out
exit $status
