#!/usr/bin/env bash
# Three regions on a real photo (scikit-image's astronaut.png, 512 x 512) in
# the Studio, driven like a person would (xdotool in a virtual X display,
# 1280x820), with the embedded model; one Run retouch does all three.
#   1. open the photo                                         0-open.png
#   2. paint region 1 (wall left of her head), prompt typed
#      in the side panel's Prompt field                       1-region1.png
#   3. New region (N), paint region 2 (flag, top left),
#      prompt typed in its label's field on the canvas        2-region2.png
#   4. Escape, N (new region), paint region 3 (wall right of
#      the rocket), prompt in the side panel's "Prompt of
#      Region 3"                                              3-three-regions.png
#   5. Run retouch: a burst of screenshots during the run
#      (run/NN.png); the one with the progress bar furthest
#      from its ends is copied                                4-running.png
#   6. the run's end (variants strip, pick one)               5-variants.png
#   7. pick variant #1: the result, mask hidden               6-result.png
#   8. M: mask and labels shown again                         7-result-mask.png
#   9. File > Save (Ctrl+S, path field)                       result.png
# The session folder (versions, one mask per region: <key>-mask-<rev>-r<i>.png)
# is copied to OUT_DIR/session, and the saved PNG is compared with the photo
# outside the painted regions (python with numpy and Pillow, when found).
#
# The embedded model is small: 128 steps of three 48x48 crops take well under
# a second, so the run has 8 variants (about 1.5 s in all) for the progress
# to be seen; the first variant (seed SEED) is picked.
#
# usage: scripts/studio-regions-demo.sh OUT_DIR [PHOTO]
#   PHOTO defaults to scikit-image's astronaut.png (pip install scikit-image);
#   coordinates below assume a 512 x 512 photo.
#   UNMASK_STUDIO_BIN=PATH runs that Studio binary instead of building one.
#   STEPS (default 128), VARIANTS (default 8), SEED (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: studio-regions-demo.sh OUT_DIR [PHOTO]}")
mkdir -p "$out"
PY=${PYTHON:-python3}
photo=${2:-}
if [ -z "$photo" ]; then
  photo=$($PY -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png"))')
fi
cp "$photo" "$out/photo.png"
rm -rf "$out/result.png" "$out/session" "$out/run" "$out"/[0-9]-*.png "$out/diff.txt"
mkdir -p "$out/run"
. scripts/xvfb-studio.sh
ensure_packages xdotool
export XDG_CONFIG_HOME=$(mktemp -d) XDG_STATE_HOME=$(mktemp -d)
export UNMASK_NO_FILE_DIALOG=1   # Save asks for the path in the Studio
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-1}   # a longer run, and the UI keeps a core
mkdir -p "$XDG_CONFIG_HOME/unmask"
cat > "$XDG_CONFIG_HOME/unmask/settings.json" <<J
{"steps": ${STEPS:-128}, "cfg": 3.0, "cfg_img": 2.0, "temperature": 0.0, "seed": ${SEED:-3}, "random_seed": false, "variants": ${VARIANTS:-8},
 "brush_size": 40.0, "brush_unit": "ScreenPoints", "model_dir": "$(pwd)/models/unmask-shapes", "context": "Auto"}
J
start_studio "$out/studio.log" "$out/photo.png"
kill -0 "$app" 2>/dev/null || { cat "$out/studio.log" >&2; echo "the Studio did not start" >&2; exit 1; }
session="$XDG_STATE_HOME/unmask/session"
shot() { import -window root "$out/$1.png"; }
# the pointer parked on the status bar, so no brush outline or hover shows
park() { xdotool mousemove 640 808; sleep 0.5; }
# egui needs press and release in different frames, and the window focused for typing
click() { xdotool mousemove "$1" "$2"; sleep 0.3; xdotool mousedown 1; sleep 0.15; xdotool mouseup 1; sleep 0.4; }
# a brush stroke through the screen points "x y" given
stroke() {
  xdotool mousemove $1; sleep 0.3; xdotool mousedown 1; sleep 0.2
  shift
  local p
  for p in "$@"; do xdotool mousemove $p; sleep 0.1; done
  xdotool mouseup 1; sleep 1
  park
}
# types into the field at x y (empty: no select-all needed)
type_at() { click "$1" "$2"; xdotool type --delay 40 "$3"; sleep 0.5; }
# replaces the text of the field at x y
retype() { click "$1" "$2"; xdotool key ctrl+a; sleep 0.2; xdotool type --delay 40 "$3"; sleep 0.4; }
# waits (at most $2 s) for version $1 of the document in the session folder
wait_version() {
  local i
  for i in $(seq 1 "$2"); do
    ls "$session"/*-v"$1".png >/dev/null 2>&1 && break
    kill -0 "$app" 2>/dev/null || { echo "the Studio exited" >&2; return 1; }
    sleep 0.5
  done
  sleep 1.5
}
xdotool windowfocus --sync "$(xdotool search --name 'Unmask Studio' | head -1)" || true
# The photo is fitted at 449..1136 x 33..720 (zoom 134%): image (x, y) is
# screen (449 + 1.342 x, 33 + 1.342 y).
park
shot 0-open
# Region 1: a stroke on the grey wall between the flag and her hair
# (image about (115..135, 60..100)); its prompt in the side panel.
stroke "605 115" "610 125" "615 135" "620 145" "625 155" "628 165"
type_at 148 440 "a large red circle"
park
shot 1-region1
# Region 2 (New region (N) in the side panel): a stroke on the flag's stars,
# top left; the selected region's label (below it: the right is taken by
# region 1's label) holds the prompt field.
click 113 363
stroke "468 58" "478 64" "490 70" "502 76" "514 82" "526 88" "534 92"
type_at 500 160 "a large blue square"
park
shot 2-region2
# Region 3 by the N key (Escape first: the label's prompt field has the
# focus, and N there would be typed): a stroke down the wall right of the
# rocket; its prompt in the side panel's "Prompt of Region 3" (the Regions
# list has grown by two rows).
xdotool key Escape; sleep 0.4
xdotool key n; sleep 0.6
stroke "1105 115" "1106 130" "1107 150" "1108 170" "1108 190" "1108 210" "1108 230"
type_at 148 485 "a large green triangle"
park
shot 3-three-regions
# Run retouch, then a burst of screenshots while it runs
xdotool mousemove 67 560; sleep 0.3; xdotool mousedown 1; sleep 0.15; xdotool mouseup 1
# (uncompressed frames: a PNG takes too long to write for a run this short)
for i in $(seq -w 1 40); do
  import -window root "$out/run/$i.ppm"
done
for f in "$out"/run/*.ppm; do convert "$f" "${f%.ppm}.png" && rm "$f"; done
# the run has ended when the progress bar (x 12..92 at y 533) is no longer
# blue; then the variants strip says "Pick a variant"
for _ in $(seq 1 240); do
  b=$(import -window root -crop 80x1+12+533 -format '%[fx:mean.b]' info:- 2>/dev/null || echo 1)
  awk -v b="$b" 'BEGIN { exit !(b < 0.2) }' && break
  kill -0 "$app" 2>/dev/null || { echo "the Studio exited" >&2; exit 1; }
  sleep 0.5
done
sleep 1
park
shot 5-variants
if [ "${VARIANTS:-8}" -gt 1 ]; then
  click 277 757   # variant #1 in the strip
  park
fi
wait_version 1 120
shot 6-result
xdotool key m; sleep 1
shot 7-result-mask
# File > Save: the path field (centred, under the title); Enter saves
xdotool key ctrl+s; sleep 1.5
shot 8-save-field
retype 640 206 "$out/result.png"
xdotool keydown Return; sleep 0.15; xdotool keyup Return; sleep 1.5
if [ ! -f "$out/result.png" ]; then
  echo "Enter in the path field did not save: clicking OK" >&2
  click 423 230; sleep 1.5
fi
[ -f "$out/result.png" ] || echo "not saved: $out/result.png" >&2
park
shot 9-saved
sleep 2   # let the session writer finish
cp -r "$session" "$out/session" 2>/dev/null || true
if $PY -c 'import numpy, PIL' 2>/dev/null; then
  # the burst frame with the progress bar nearest half way, as 4-running.png;
  # then the saved result against the photo, outside and inside the regions
  $PY - "$out" <<'P' | tee "$out/diff.txt"
import glob, json, os, shutil, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
best = None
for p in sorted(glob.glob(os.path.join(out, "run", "*.png"))):
    a = np.asarray(Image.open(p).convert("RGB")).astype(int)
    # the progress bar of the side panel (x 8..296, y 526..542): its fill is blue
    row = a[533, 10:294]
    filled = (row[:, 2] > 90) & (row[:, 2] > row[:, 0] + 40)
    f = filled.mean()
    print(f"run frame {os.path.basename(p)}: progress bar {100 * f:.0f}% filled")
    if 0.0 < f and (best is None or abs(f - 0.5) < abs(best[0] - 0.5)):
        best = (f, p)
if best:
    shutil.copy(best[1], os.path.join(out, "4-running.png"))
    print(f"4-running.png is {os.path.basename(best[1])}")
else:
    print("no burst frame shows the progress bar")
rp = os.path.join(out, "result.png")
if not os.path.exists(rp):
    sys.exit("no result.png")
photo = np.asarray(Image.open(os.path.join(out, "photo.png")).convert("RGB")).astype(int)
res = np.asarray(Image.open(rp).convert("RGB")).astype(int)
print(f"photo {photo.shape[1]}x{photo.shape[0]}, result.png {res.shape[1]}x{res.shape[0]}")
index = json.load(open(os.path.join(out, "session", "session.json")))
doc = index["documents"][0]
union = np.zeros(photo.shape[:2], bool)
d = np.abs(res - photo).max(axis=2)
for r in doc["regions"]:
    m = np.asarray(Image.open(os.path.join(out, "session", r["mask"])).convert("L")) > 127
    union |= m
    ys, xs = np.nonzero(m)
    print(f"{r['name']} ({r['prompt']!r}, mask {r['mask']}): {int(m.sum())} px, bbox x {xs.min()}..{xs.max() + 1} y {ys.min()}..{ys.max() + 1}; "
          f"changed inside: {int((m & (d > 0)).sum())}, by more than 32: {int((m & (d > 32)).sum())}")
outside = ~union
print(f"outside the three regions: {int(outside.sum())} px, changed: {int((outside & (d > 0)).sum())}, max diff {int(d[outside].max())}")
print(f"inside the union: {int(union.sum())} px, changed: {int((union & (d > 0)).sum())}")
P
fi
echo "screenshots in $out" >&2
