#!/bin/bash
# The GPU check of issue 3, run on a lent GPU machine from the repository root (PyTorch, Lightning and
# torchdiffeq come with the machine's image; odevideo runs from src/). MNIST IDX files in $MNIST (default .mnist).
#   1. names the GPU and the software, 2. trains 5 steps of a tiny config on it (smoke test),
#   3. trains mmnist2_latent (the learned spatial latent ODE) with the GPU recipe for $MINUTES wall-minutes and scores it like every quality row.
# Everything it prints and the results row land in $OUT. SMOKE=0 skips step 2.
set -o pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/odevideo-gpu}; MNIST=${MNIST:-.mnist}; MINUTES=${MINUTES:-5}; NAME=${NAME:-latent_ode-wide-gpu}
RECIPE=${RECIPE:---set data.batch_size=128 --set train.precision=32-true}
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, lightning, torchdiffeq; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/gpu.txt"
[ "${SMOKE:-1}" = 1 ] && timeout 150 python3 -m odevideo.cli train --config demo --set data.size=32 --set data.digit_size=14 --set model.kind=latent_ode \
    --set model.width=8 --set model.latent_dim=4 --set model.field_hidden=8 --set data.val_size=8 \
    --max-steps 5 --out /tmp/smoke --overwrite --no-progress 2>&1 | tail -4 | tee "$OUT/smoke.txt"
timeout $((MINUTES * 60 + 240)) python3 benchmarks/quality.py --config mmnist2_latent --objective prediction \
    --minutes "$MINUTES" --clock wall --mnist-dir "$MNIST" --model-name "$NAME" $RECIPE \
    --results quality_gpu.json 2>&1 \
    | grep -v "^|" | tee "$OUT/quality.log"
cp benchmarks/results/quality_gpu.json "$OUT/" 2>/dev/null
tail -3 benchmarks/runs/*/metrics.csv > "$OUT/metrics_tail.txt" 2>/dev/null
true
