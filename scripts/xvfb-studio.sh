# Sourced by the Studio scripts: installs what a real window needs under Xvfb
# (as root, when missing), builds the Studio and starts it in a virtual display.
#   ensure_packages [EXTRA...]   Debian packages, plus EXTRA
#   start_studio LOG ARGS...     Xvfb + unmask-studio ARGS, waits for the window;
#                                sets $app and $xvfb (killed on exit)
ensure_packages() {
  local pkgs="xvfb xauth libvulkan1 mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri libx11-xcb1 libxcursor1 libxi6 libxkbcommon-x11-0 libwayland-client0 imagemagick x11-utils $*"
  local missing="" p
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  cargo build --release -p unmask-studio >&2
}

start_studio() {
  local log=$1
  shift
  export XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR"
  local display=:$((90 + RANDOM % 100))
  Xvfb "$display" -screen 0 1280x820x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $app $xvfb 2>/dev/null || true' EXIT
  export DISPLAY=$display
  sleep 1
  ./target/release/unmask-studio "$@" >"$log" 2>&1 &
  app=$!
  # wait for the window, then give the model and first frames time to settle
  for _ in $(seq 1 60); do
    if xwininfo -root -tree 2>/dev/null | grep -q "Unmask Studio"; then break; fi
    sleep 0.5
  done
  sleep "${SETTLE:-4}"
}
