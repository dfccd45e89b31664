#!/usr/bin/env bash
# One call of the device tool, up to four fine-tunes at once on its one GPU (16 CPU cores: rendering 1024² views
# is the bottleneck, so each run gets WORKERS data workers, 3 by default), each from the committed checkpoint of
# its model, on whole 1024² windows, batch 4 (+ mirror):
#   run(command="MINUTES=8 training/device_sweep.sh 'p2p_scale pix2pixcc --scale-range 0.4,8' \
#                'mrfed_scale mrfed --loss pearson=1,slope=0.5 --scale-range 0.4,8'",
#       carry=["runs/corpus.npz", "runs/heldout.npz"], timeout_s=600)
# Each argument is 'NAME MODEL [train.py options]' (after the common ones; the last of a repeated option wins).
# Back under $OUT (the tool brings back 8 files of 16 MiB at most): NAME.tar (train.log, the process's own
# output, last.pt) and NAME_best.pt where the best held-out checkpoint is not the last.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder whose files come back}"
(( $# >= 1 && $# <= 4 )) || { echo "give 1 to 4 runs, each 'NAME MODEL [options]'" >&2; exit 2; }
runs=${RUNS:-/tmp/device_runs}
python=${PYTHON:-python3}
mkdir -p "$runs"
names=()
for spec in "$@"; do
    read -ra words <<< "$spec"
    name=${words[0]}; model=${words[1]}
    names+=("$name")
    $python -m training.train --model "$model" --out "$runs/$name" --minutes "${MINUTES:-8}" \
        --workers "${WORKERS:-3}" --threads 2 --corpus-cache runs/corpus.npz --heldout-cache runs/heldout.npz \
        --eval-minutes 2 --flip-double --crop 1024 --batch 4 --lr 3e-4 \
        --finetune "training/checkpoints/${model}_last.pt" "${words[@]:2}" > "$runs/$name.out" 2>&1 &
done
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
for name in "${names[@]}"; do  # what exists comes back, even from a run that failed part-way
    dir=$runs/$name
    cp "$runs/$name.out" "$dir/" 2>/dev/null
    files=()
    for file in train.log "$name.out" last.pt; do [[ -f "$dir/$file" ]] && files+=("$file"); done
    tar -cf "$OUT/$name.tar" -C "$dir" "${files[@]}"
    if [[ -f "$dir/best.pt" ]] && ! cmp -s "$dir/best.pt" "$dir/last.pt"; then cp "$dir/best.pt" "$OUT/${name}_best.pt"; fi
    tail -n 3 "$runs/$name.out"
done
exit $status
