#!/usr/bin/env bash
# A retouch of a 4000 x 3000 photo in the Studio, driven like a person would
# (xdotool in a virtual X display): paint over the orange disc, type a prompt,
# run 8 variants of 128 steps with the embedded model, pick one. Screenshots
# land in OUT_DIR: 0-open, 1-mask (context box), 2-progress-N, 3-done, 4-picked.
#
# usage: scripts/studio-retouch-demo.sh OUT_DIR
# Needs the packages of studio-screenshot.sh plus xdotool (installed when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:?usage: studio-retouch-demo.sh OUT_DIR}")
mkdir -p "$out"
. scripts/xvfb-studio.sh
ensure_packages xdotool
convert -size 4000x3000 gradient:skyblue-darkgreen -fill orange -draw "circle 2600,1200 2600,1500" \
  -fill white -draw "rectangle 600,1800 1400,2600" "$out/photo.png"
export XDG_CONFIG_HOME=$(mktemp -d) XDG_STATE_HOME=$(mktemp -d)
mkdir -p "$XDG_CONFIG_HOME/unmask"
cat > "$XDG_CONFIG_HOME/unmask/settings.json" <<J
{"steps": 128, "cfg": 3.0, "cfg_img": 2.0, "temperature": 0.0, "seed": 3, "random_seed": false, "variants": 8,
 "brush_size": 200.0, "model_dir": "$(pwd)/models/unmask-shapes", "context": "Auto"}
J
start_studio "$out/studio.log" "$out/photo.png"
shot() { import -window root "$out/$1.png"; }
# egui needs press and release in different frames, and the window focused for typing
click() { xdotool mousemove "$1" "$2"; sleep 0.3; xdotool mousedown 1; sleep 0.15; xdotool mouseup 1; sleep 0.4; }
xdotool windowfocus --sync "$(xdotool search --name 'Unmask Studio' | head -1)" || true
shot 0-open
xdotool mousemove 900 300; sleep 0.3; xdotool mousedown 1; sleep 0.2
for p in "905 305" "915 312" "930 322" "945 335" "955 348" "960 355"; do xdotool mousemove $p; sleep 0.1; done
xdotool mouseup 1; sleep 1
shot 1-mask
click 147 310
xdotool type --delay 40 "a large red circle in the center"
sleep 0.5
click 67 360
for i in 1 2 3 4 5 6; do sleep 0.4; shot "2-progress-$i"; done
sleep 8
shot 3-done
click 300 767
sleep 1
shot 4-picked
echo "screenshots in $out" >&2
