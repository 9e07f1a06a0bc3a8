#!/usr/bin/env bash
# The GPU checks, in one call of a lent machine (the order puts the open question first):
#   1. recipes/pretrain-wikiann.toml under a time budget, then zero-shot transfer (German fine-tuning,
#      de/fr/en/nl test F1) from random weights and from that encoder (bench/pretrain_transfer.py);
#   2. training throughput of nertool's Loop against transformers.Trainer at XLM-R-base size (bench/gpu_train.py).
# Usage, from the repository root:  bench/gpu_session.sh WIKIANN_DIR OUT_DIR [PRETRAIN_MINUTES]
# Each stage has its own time limit, so one that overruns still leaves the other's results.
set -u
data=${1:?WikiANN folder (language/split files)}
out=${2:?folder for the results}
minutes=${3:-3.5}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/nvidia-smi.txt" 2>&1
python3 -c 'import torch, transformers, accelerate; print(torch.__version__, transformers.__version__, accelerate.__version__)' \
  >>"$out/nvidia-smi.txt" 2>&1

timeout 450 python3 -m bench.pretrain_transfer \
  --pretrain-recipe recipes/pretrain-wikiann.toml --data "$data" \
  --pretrain-set "pretrain.max_minutes=$minutes" \
  --finetune-set 'train.mixed_precision="bf16"' --finetune-set train.eval_batch_size=256 \
  --lr 5e-4 --lr 1e-4 --train-sentences 8000 --eval-sentences 10000 --parallel 4 \
  --work /tmp/gpu-pretrain --name gpu_pretrain_transfer --device cuda --out "$out" \
  >"$out/pretrain_transfer.log" 2>&1
echo "pretrain_transfer exit $?" >>"$out/pretrain_transfer.log"
tail -20 "$out/pretrain_transfer.log"

timeout 110 python3 -m bench.gpu_train --out "$out" --data-root "$(dirname "$data")" >"$out/gpu_train.log" 2>&1
echo "gpu_train exit $?" >>"$out/gpu_train.log"
tail -14 "$out/gpu_train.log"

# Run logs (no weights): the pre-training log and manifest, each fine-tuning log and table.
tar czf "$out/logs.tgz" -C /tmp/gpu-pretrain --exclude=model --exclude=checkpoint --exclude='*.png' . 2>/dev/null
