#!/usr/bin/env bash
# Both generators at once on one GPU machine (16 cores: 7 data workers each), from the packed corpus.
#   python3 -m terrain.corpus --cache runs/corpus.npz; python3 -m terrain.corpus --split heldout --cache runs/heldout.npz
#   training/train_gpu.sh MINUTES OUT [extra train.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=$1; out=$2; shift 2
python=${PYTHON:-python3}
logs=${LOGDIR:-$out}   # the processes' own output (tracebacks included)
common=(--minutes "$minutes" --workers 7 --threads 2 --corpus-cache runs/corpus.npz --heldout-cache runs/heldout.npz
        --eval-minutes 2 --flip-double "$@")
mkdir -p "$out" "$logs"
$python -m training.train --model pix2pixcc --out "$out/pix2pixcc" "${common[@]}" > "$logs/pix2pixcc.out" 2>&1 &
$python -m training.train --model mrfed --out "$out/mrfed" "${common[@]}" > "$logs/mrfed.out" 2>&1 &
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
tail -n 6 "$logs"/pix2pixcc.out "$logs"/mrfed.out
exit $status
