#!/usr/bin/env bash
# The GPU check, ready to run on a machine with CUDA (issue: "a GPU check ready to run"):
#   bash scripts/gpu_check.sh [OUT_FILE]          # default: gpu_check.txt in the repository root
# 1. the CUDA tests (every test that skips without CUDA),
# 2. the step benchmark on CPU and CUDA (make bench),
# 3. a few paper-budget deep cells on the GPU (yeast, MCAR 0.2, seed 0), into a private store,
#    then their rows as an export (results_gpu/paper/rows.csv.gz) that `make merge` takes.
# Everything it prints goes to one file. It needs `make setup` first; on a CUDA machine install a
# CUDA build of torch 2.13.0 instead of the CPU wheel (`pip install torch==2.13.0`).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-gpu_check.txt}"
PY="${PY:-.venv/bin/python}"
STORE="${STORE:-results_gpu}"
exec > >(tee "$OUT") 2>&1
echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), git $(git rev-parse --short HEAD)"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "## 1. CUDA tests"
"$PY" -m pytest -q -rs -k "cuda" tests/
echo "## 2. step benchmark"
"$PY" -m scripts.bench_step
echo "## 3. paper-budget deep cells on the GPU (yeast, MCAR 0.2, seed 0)"
for imputer in gain metagain midae vaei hivae; do
  /usr/bin/time -f "wall %e s, max RSS %M KB" "$PY" -m experiments.run dataset=yeast mechanism=mcar ratio=0.2 \
    imputer="$imputer" seed=0 profile=paper device=cuda results_dir="$STORE"
done
"$PY" -m experiments.export --profile paper --results-dir "$STORE"
echo "# done: $OUT"
