#!/usr/bin/env bash
# The GPU check in one command, for a machine with a GPU and no package index (the lent H200): install
# the packages that machine lacks from wheels carried in .whl/, install taskcodec without dependencies
# (its entry points must exist), then run scripts/gpu_check.py on CUDA within 8 minutes.
#
# Where an index is reachable (here), fetch the wheels once (cp312, the H200's Python):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl compressai==1.2.8 imagecodecs==2026.1.14 facenet-pytorch==2.5.3 pytorch-msssim==1.0.0 \
#     jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
# (compressai 1.2.8 runs with numpy 2 although it declares numpy<2; --no-deps skips that check.)
# The LFW and FER+ steps read ../shared (TASKCODEC_DATA) and the MobileFaceNet weights ($TASKCODEC_MOBILEFACENET).
#
#   bash scripts/gpu_check.sh OUT_DIR        # prints the table; OUT_DIR/gpu_check.json keeps it
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu-check}}"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
python3 -m pip install -q --no-deps --no-build-isolation -e .
export TASKCODEC_DATA="${TASKCODEC_DATA:-$(cd .. && pwd)/shared/datasets}"
export TASKCODEC_MOBILEFACENET="${TASKCODEC_MOBILEFACENET:-$(cd .. && pwd)/shared/models/mobilefacenet_casia_068.ckpt}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 480 python3 scripts/gpu_check.py --device cuda --out "$out"
