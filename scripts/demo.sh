#!/usr/bin/env bash
# The main job on the embedded default: install, index the sample footage, search it, open the UI.
#
#   scripts/demo.sh                 # OpenAI CLIP ViT-B/32 weights (open_clip downloads them)
#   SCENESEARCH_PRETRAINED=/path/to/open_clip_pytorch_model.bin scripts/demo.sh   # local file
#   SCENESEARCH_PRETRAINED=random scripts/demo.sh   # offline plumbing demo (meaningless results)
#   SCENESEARCH_NO_SERVE=1 scripts/demo.sh          # stop after the searches
#   SCENESEARCH_SETUP=0 scripts/demo.sh             # skip the install: use the scenesearch on PATH
#
# The sample footage is ../shared/corpus (or $SCENESEARCH_CORPUS); the index goes to ./demo-index.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SCENESEARCH_SETUP:-1}" != "0" ]; then
    bash scripts/setup.sh
    . .venv/bin/activate
fi
CORPUS=${SCENESEARCH_CORPUS:-../shared/corpus}
PRETRAINED=${SCENESEARCH_PRETRAINED:-openai}
INDEX=${SCENESEARCH_DEMO_INDEX:-demo-index}
V="$CORPUS/video"
if [ ! -f "$V/bbb_full_1280x720_24p.mp4" ]; then
    echo "sample footage not found under $CORPUS (set SCENESEARCH_CORPUS)" >&2
    exit 1
fi
mkdir -p "$INDEX"
V=$(cd "$V" && pwd)
cat > "$INDEX/manifest.csv" <<CSV
path,title,year,genres
$V/bbb_full_1280x720_24p.mp4,Big Buck Bunny,2008,animation|comedy
$V/sintel_mangomm_848x480_26s.mp4,Sintel (excerpt),2010,animation|fantasy|adventure
$V/his_girl_friday_1940_mdn_6s.mp4,His Girl Friday (excerpt),1940,comedy|romance
$V/city_kivy_cc0_720x405.mpg,City (CC0),,documentary
$V/flower_mdn_cc0_960x540.mp4,Flower (CC0),,documentary
CSV
rc=0
scenesearch index --index "$INDEX" --pretrained "$PRETRAINED" --manifest "$INDEX/manifest.csv" || rc=$?
if [ "$rc" = 1 ]; then  # 2 = some movies failed (listed above): the demo goes on with the rest
    cat >&2 <<MSG
demo.sh: indexing stopped (the error is above). The demo takes its weights from
SCENESEARCH_PRETRAINED (now '$PRETRAINED'), which it passes to 'scenesearch index --pretrained'.
Without access to the model hub, run it with a local weights file, or with random weights for a
plumbing demo whose results are meaningless:
  SCENESEARCH_PRETRAINED=/path/to/open_clip_pytorch_model.bin scripts/demo.sh
  SCENESEARCH_PRETRAINED=random scripts/demo.sh
MSG
    exit 1
fi
scenesearch info --index "$INDEX" --top 10
scenesearch search --index "$INDEX" "a forest with trees and a river" -k 5
scenesearch search --index "$INDEX" "a city street" --genre documentary -k 3
if [ -z "${SCENESEARCH_NO_SERVE:-}" ]; then
    echo "web app: http://127.0.0.1:7860  (Ctrl-C to stop)"
    scenesearch serve --index "$INDEX" --movies "$V"
fi
