#!/usr/bin/env bash
# Issue 16's checks on a machine with a CUDA GPU, as one script (run from the repo root):
#   1. the default test run with CUDA present (the suite must pass with and without a GPU);
#   2. sampling on the GPU: the loop against the bare step, N streams as one batch against
#      one (target >= 100k chars/s batched), and the same bench on this machine's CPU for
#      GPU against CPU sampling;
#   3. training on documents on the GPU (packed sequences / spans) against carrying the state,
#      with each path's step cost by the number of timesteps holding a start.
# Every output lands in $OUT (default gpu_out/). Packages the machine lacks (textual, pytest,
# ...) can come as wheels in .whl/, installed to /tmp/site first.
#
#     OUT=gpu_out bash bench/gpu_check.sh
set -u
py=${PYTHON:-python3}
out=${OUT:-gpu_out}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
    export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1
$py -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU on this machine')" || exit 2
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
$py -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" | tee "$out/torch.txt"

timeout 300 $py -m pytest -q -x -p no:cacheprovider > "$out/tests.txt" 2>&1
echo "tests: exit $?; $(tail -1 "$out/tests.txt")"
timeout 120 $py bench/sample_batch.py --device cuda --repeats 3 --length 1000 > "$out/sample_cuda.txt" 2>&1
timeout 60 $py bench/sample_batch.py --device cpu --repeats 3 --length 1000 --max-n 1 > "$out/sample_cpu.txt" 2>&1
timeout 150 $py bench/doc_throughput.py --device cuda --precision bf16 --steps 30 --repeats 3 --costs > "$out/doc_cuda.txt" 2>&1
tail -n 20 "$out/sample_cuda.txt" "$out/sample_cpu.txt" "$out/doc_cuda.txt"
