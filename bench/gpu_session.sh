#!/usr/bin/env bash
# The GPU checks, as one prepared script per step:
#   bench/gpu_session.sh prep [WIKIANN_DIR]      on any machine: copy the WikiANN de files the GPU run
#                                                 reads into .gpudata/wikiann (git-ignored; carry it)
#   bench/gpu_session.sh run [OUT_DIR]           on the GPU machine: bench/gpu_train.py (Trainer vs the
#                                                 lean step, CUDA graphs, token budgets, predict), under
#                                                 10 minutes; writes OUT_DIR/gpu_<card>.json (default bench/results)
#   bench/gpu_session.sh pretrain WIKIANN_DIR OUT_DIR [MINUTES]
#                                                 the pre-training + zero-shot transfer check (bench/pretrain_transfer.py)
# The GPU machine has torch, transformers and accelerate but no datasets or seqeval: nothing here needs them.
set -u
step=${1:?prep, run or pretrain}
shift
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

describe_machine() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c 'import torch, transformers, accelerate; print(torch.__version__, transformers.__version__, accelerate.__version__)' 2>&1
}

case "$step" in
prep)
  src=${1:-../shared/data/wikiann}
  mkdir -p .gpudata/wikiann/de
  for split in train validation; do
    install -m 0644 "$src/de/$split.tsv" .gpudata/wikiann/de/ || exit 1
  done
  ls -l .gpudata/wikiann/de
  ;;
run)
  out=${1:-bench/results}
  mkdir -p "$out"
  describe_machine >"$out/gpu_machine.txt"
  cat "$out/gpu_machine.txt"
  timeout 570 python3 -m bench.gpu_train --data .gpudata/wikiann --out "$out" 2>&1 | tee "$out/gpu_train.log"
  echo "gpu_train exit ${PIPESTATUS[0]}" | tee -a "$out/gpu_train.log"
  ;;
pretrain)
  data=${1:?WikiANN folder (language/split files)}
  out=${2:?folder for the results}
  minutes=${3:-3.5}
  mkdir -p "$out"
  describe_machine >"$out/nvidia-smi.txt"
  timeout 450 python3 -m bench.pretrain_transfer \
    --pretrain-recipe recipes/pretrain-wikiann.toml --data "$data" \
    --pretrain-set "pretrain.max_minutes=$minutes" \
    --finetune-set 'train.mixed_precision="bf16"' --finetune-set train.eval_batch_size=256 \
    --lr 5e-4 --lr 1e-4 --train-sentences 8000 --eval-sentences 10000 --parallel 4 \
    --work /tmp/gpu-pretrain --name gpu_pretrain_transfer --device cuda --out "$out" \
    >"$out/pretrain_transfer.log" 2>&1
  echo "pretrain_transfer exit $?" >>"$out/pretrain_transfer.log"
  tail -20 "$out/pretrain_transfer.log"
  # Run logs (no weights): the pre-training log and manifest, each fine-tuning log and table.
  tar czf "$out/logs.tgz" -C /tmp/gpu-pretrain --exclude=model --exclude=checkpoint --exclude='*.png' . 2>/dev/null
  ;;
*)
  echo "usage: bench/gpu_session.sh prep [WIKIANN_DIR] | run [OUT_DIR] | pretrain WIKIANN_DIR OUT_DIR [MINUTES]" >&2
  exit 2
  ;;
esac
