#!/usr/bin/env bash
# Install samlp-lite's optional extras into a Python environment (default: the `python3` on PATH;
# PYTHON=.venv/bin/python to choose another), keeping its PyTorch as it is.
#
#   bash .ci/install-extras.sh cluster       # Ray 2.60.0: samlp-lite reproduce --backend ray
#   bash .ci/install-extras.sh distributed   # TorchRec 1.8.0 on the CPU: torchrun -m samlp_lite.runs.scale
#
# Why a script for `distributed`: torchrec depends on `fbgemm-gpu`, the CUDA build (1.9.0), which
# shares the `fbgemm_gpu` module folder with the CPU build `fbgemm-gpu-cpu` and fails to load
# without CUDA (libtorch_cuda.so). So after pip has installed the extra, both builds are removed
# and the CPU one is put back alone with --no-deps (pip check then reports the missing fbgemm-gpu;
# that is expected). On GPU hosts install torchrec==1.8.0 with the fbgemm-gpu build that matches
# the CUDA build of PyTorch instead (PyTorch's wheel index), not this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ $# -gt 0 ] || { echo "usage: bash .ci/install-extras.sh cluster|distributed [...]" >&2; exit 2; }

pip_quiet() {  # pip, silent when it succeeds; on failure its output (less the harmless "... is ignored" lines)
  local out rc=0
  out=$("$PY" -m pip "$@" 2>&1) || rc=$?
  if [ $rc -ne 0 ]; then grep -v "is ignored" <<<"$out" >&2 || true; fi
  return $rc
}

torch_version=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_version" >"$constraints"

for extra in "$@"; do
  case "$extra" in
    cluster)
      pip_quiet install -q -c "$constraints" -e ".[cluster]"
      "$PY" -c "import ray; print('ray', ray.__version__)"
      ;;
    distributed)
      pip_quiet install -q -c "$constraints" -e ".[distributed]"
      pip_quiet uninstall -q -y fbgemm-gpu fbgemm-gpu-cpu
      pip_quiet install -q --no-deps fbgemm-gpu-cpu==1.8.0
      "$PY" -c "import torchrec, fbgemm_gpu; from torchrec.distributed.model_parallel import DistributedModelParallel; print('torchrec', torchrec.__version__, 'fbgemm_gpu', fbgemm_gpu.__version__)"
      ;;
    *)
      echo "unknown extra '$extra': choose cluster or distributed" >&2
      exit 2
      ;;
  esac
done
