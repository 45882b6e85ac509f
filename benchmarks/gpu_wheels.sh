#!/usr/bin/env bash
# Wheels for benchmarks/gpu.py on the rented GPU machine (nvidia-h200: Python 3.12, no network).
#
#     bash benchmarks/gpu_wheels.sh                   # into .whl/ (ignored via .git/info/exclude)
#     WITH_DASK_CUDA=0 bash benchmarks/gpu_wheels.sh  # without dask-cuda (see below)
#
# That machine already has torch, torchvision, the nvidia-* libraries, numpy, scipy, pillow,
# tqdm, huggingface-hub, safetensors, pyyaml, jinja2, cloudpickle, fsspec, toolz, msgpack,
# psutil, sortedcontainers, click, attrs, certifi, pyparsing, packaging, urllib3
# (/work/.library/device/KINDS.md). This fetches what geoseg's prediction path needs and it
# lacks, pinned to the versions in .venv (pip freeze), as Python 3.12 manylinux x86_64 wheels.
# Not fetched (not imported by `geoseg.engine.predict`, and too large for the 64 MiB that
# travels): rio-cogeo, pyogrio, geopandas, shapely, pyproj, bokeh (distributed runs without its
# dashboard). timm and typing-extensions are carried to match .venv (smp imports timm; pydantic
# needs typing-extensions>=4.16); huggingface-hub and safetensors are not (the machine's satisfy
# smp's pins; hub 2.x would also need httpx2 and hf-xet).
#
# dask-cuda (not in .venv): every release pins dask through rapids-dask-dependency (26.10 pins
# dask 2026.7.1, .venv has 2026.8.0), so a resolving install would pull another dask. It is
# carried with --no-deps instead, the only dask being 2026.8.0: against it dask-cuda 26.10.0
# imports, and LocalCUDACluster fails here only for want of NVML (tried with Python 3.12); its
# other needs (cuda-core, nvidia-ml-py, pandas) are on that machine. Where it fails there,
# geoseg falls back to a CPU LocalCluster with a warning, and benchmarks/gpu.py says so.
# WITH_DASK_CUDA=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DEST=.whl
DASK_CUDA_VERSION=26.10.0

PACKAGES=(
  rasterio affine cligj click-plugins              # rasterio and its needs missing there
  dask distributed partd locket tblib zict tornado # dask[distributed]
  pydantic pydantic-core annotated-types typing-inspection typing-extensions
  segmentation-models-pytorch timm
)

mkdir -p .git/info
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude

norm() { tr '[:upper:]' '[:lower:]' | tr '_.' '--'; }
FREEZE=$("$PY" -m pip freeze --exclude-editable)
pin() { # NAME -> NAME==VERSION as installed in .venv
  local want line
  want=$(echo "$1" | norm)
  while IFS= read -r line; do
    if [[ $line == *==* && $(echo "${line%%==*}" | norm) == "$want" ]]; then
      echo "$1==${line#*==}"
      return
    fi
  done <<<"$FREEZE"
  echo "gpu_wheels.sh: $1 is not installed in $PY's environment" >&2
  exit 1
}

SPECS=()
for p in "${PACKAGES[@]}"; do SPECS+=("$(pin "$p")"); done
if [[ ${WITH_DASK_CUDA:-1} == 1 ]]; then SPECS+=("dask-cuda==$DASK_CUDA_VERSION"); fi

rm -rf "$DEST" && mkdir -p "$DEST" # one version of each: two stop the whole install there
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$DEST" "${SPECS[@]}"

# rasterio's wheel (GDAL, PROJ, HDF5, ...) is 34 MiB deflated and 26 MiB re-packed with LZMA:
# that keeps the wheels plus the repository (~25 MiB, mostly examples/) under the 64 MiB that
# travels. Same members and RECORD; pip reads LZMA members through zipfile. ~1 min here.
"$PY" - "$DEST" <<'PYEOF'
import os
import sys
import zipfile

for name in sorted(os.listdir(sys.argv[1])):
    path = os.path.join(sys.argv[1], name)
    if os.path.getsize(path) < 2**20:
        continue
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(path + ".tmp", "w") as zo:
        for info in zi.infolist():
            data = zi.read(info)
            info.compress_type = zipfile.ZIP_LZMA
            zo.writestr(info, data)
    os.replace(path + ".tmp", path)
PYEOF

ls -1s --block-size=K "$DEST"
EXCL=(--exclude=./.git --exclude=./.venv --exclude=./bench-output --exclude='*.egg-info'
  --exclude=__pycache__ --exclude=.ruff_cache --exclude=.pytest_cache --exclude=./test-artifacts
  --exclude=./demo-output --exclude=./build)
mib() { awk '{printf "%.1f MiB", $1 / 1048576}'; }
echo "wheels: $(du -sb "$DEST" | cut -f1 | mib) in $(ls "$DEST" | wc -l) files"
rest=$(du -sb "${EXCL[@]}" --exclude=./.whl . | cut -f1 | mib)
echo "the rest of the tree that travels (approx., ignored paths left out): $rest"
echo "total that travels (approx.): $(du -sb "${EXCL[@]}" . | cut -f1 | mib) (limit 64 MiB)"
