#!/usr/bin/env bash
# A retouch and an outpaint of a real photo (scikit-image's astronaut.png,
# 512 x 512) in the Studio, driven like a person would (xdotool in a virtual
# X display, 1280x820), with the embedded model: 1 variant, fixed seed.
#   1. open the photo                                       0-open.png
#   2. paint a small blob on the wall right of her head     1-mask.png
#   3. type a prompt, Run retouch, wait                     2-retouch-done.png
#   4. File > Save (Ctrl+S, path field)                     retouch.png
#   5. Extend canvas: 128 px on the right                   3-extended.png
#   6. type a prompt, Run, wait                             4-outpaint-done.png
#   7. Ctrl+S to a second path                              outpaint.png
# The painted mask (from the session folder) is copied to mask-retouch.png and
# the session folder (versions, last mask) to OUT_DIR/session, and
# scripts/photo-diff.py compares the saved PNGs with the photo when python
# with numpy and Pillow is found.
#
# usage: scripts/studio-photo-demo.sh OUT_DIR [PHOTO]
#   PHOTO defaults to scikit-image's astronaut.png (pip install scikit-image);
#   coordinates below assume a 512 x 512 photo.
#   UNMASK_STUDIO_BIN=PATH runs that Studio binary instead of building one.
#   STEPS (default 32), SEED (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: studio-photo-demo.sh OUT_DIR [PHOTO]}")
mkdir -p "$out"
PY=${PYTHON:-python3}
photo=${2:-}
if [ -z "$photo" ]; then
  photo=$($PY -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data", "astronaut.png"))')
fi
cp "$photo" "$out/photo.png"
rm -rf "$out/retouch.png" "$out/outpaint.png" "$out/session" "$out/mask-retouch.png"
. scripts/xvfb-studio.sh
ensure_packages xdotool
export XDG_CONFIG_HOME=$(mktemp -d) XDG_STATE_HOME=$(mktemp -d)
export UNMASK_NO_FILE_DIALOG=1   # Save asks for the path in the Studio
mkdir -p "$XDG_CONFIG_HOME/unmask"
cat > "$XDG_CONFIG_HOME/unmask/settings.json" <<J
{"steps": ${STEPS:-32}, "cfg": 3.0, "cfg_img": 2.0, "temperature": 0.0, "seed": ${SEED:-3}, "random_seed": false, "variants": 1,
 "brush_size": 40.0, "brush_unit": "ScreenPoints", "model_dir": "$(pwd)/models/unmask-shapes", "context": "Auto"}
J
start_studio "$out/studio.log" "$out/photo.png"
kill -0 "$app" 2>/dev/null || { cat "$out/studio.log" >&2; echo "the Studio did not start" >&2; exit 1; }
shot() { import -window root "$out/$1.png"; }
# egui needs press and release in different frames, and the window focused for typing
click() { xdotool mousemove "$1" "$2"; sleep 0.3; xdotool mousedown 1; sleep 0.15; xdotool mouseup 1; sleep 0.4; }
# replaces the text of the field at x y
retype() { click "$1" "$2"; xdotool key ctrl+a; sleep 0.2; xdotool type --delay 40 "$3"; sleep 0.4; }
# waits (at most $2 s) for version $1 of the document in the session folder
# (v0 is the photo; each result or extension adds one)
wait_version() {
  local i
  for i in $(seq 1 "$2"); do
    ls "$XDG_STATE_HOME"/unmask/session/*-v"$1".png >/dev/null 2>&1 && break
    kill -0 "$app" 2>/dev/null || { echo "the Studio exited" >&2; return 1; }
    sleep 1
  done
  sleep 2
}
save_as() {
  xdotool key ctrl+s; sleep 1.5
  shot "$2"
  # the path field (centred, under the title): replace its text, press Enter;
  # should that not save, click OK
  retype 640 206 "$1"
  xdotool keydown Return; sleep 0.15; xdotool keyup Return; sleep 1.5
  if [ ! -f "$1" ]; then
    echo "Enter in the path field did not save $1: clicking OK" >&2
    shot "$2-after-enter"
    click 423 230; sleep 1.5
  fi
  [ -f "$1" ] || echo "not saved: $1" >&2
}
xdotool windowfocus --sync "$(xdotool search --name 'Unmask Studio' | head -1)" || true
# the photo is fitted at 445..1132 x 33..720 (zoom 134%): image (x, y) is
# screen (445 + 1.342 x, 33 + 1.342 y). The blob: around image (330, 125),
# the grey wall between her hair and the rocket.
shot 0-open
xdotool mousemove 878 195; sleep 0.3; xdotool mousedown 1; sleep 0.2
for p in "882 198" "888 202" "894 205" "900 207" "904 208"; do xdotool mousemove $p; sleep 0.1; done
xdotool mouseup 1; sleep 1
shot 1-mask
# the painted mask as the session keeps it (written in the background)
sleep 2
m=$(ls -t "$XDG_STATE_HOME"/unmask/session/*-mask-*.png 2>/dev/null | head -1 || true)
[ -n "$m" ] && cp "$m" "$out/mask-retouch.png"
retype 148 440 "a large red circle"
shot 1-prompt
click 67 514
sleep 1.5
shot 2-retouch-running
wait_version 1 120
shot 2-retouch-done
save_as "$out/retouch.png" 2-save-field
shot 2-saved
# Extend canvas (collapsed header in the side panel)
click 60 331
shot 3-extend-panel
retype 115 387 128
xdotool key Return; sleep 0.4
click 54 433
sleep 1.5
shot 3-extended
retype 148 612 "a blue square"
shot 3-prompt
click 67 685
sleep 1.5
shot 4-outpaint-running
wait_version 3 120
shot 4-outpaint-done
save_as "$out/outpaint.png" 4-save-field
shot 4-saved
sleep 2   # let the session writer finish
cp -r "$XDG_STATE_HOME/unmask/session" "$out/session" 2>/dev/null || true
if $PY -c 'import numpy, PIL' 2>/dev/null && [ -f "$out/retouch.png" ]; then
  $PY scripts/photo-diff.py "$out" | tee "$out/diff.txt"
fi
echo "screenshots in $out" >&2
