# Sourced by the Studio scripts: installs what a real window needs under Xvfb
# (as root, when missing), builds the Studio and starts it in a virtual display.
#   ensure_packages [EXTRA...]   Debian packages, plus EXTRA
#   start_studio LOG ARGS...     Xvfb + unmask-studio ARGS, waits for the window;
#                                sets $app and $xvfb (killed on exit)
# UNMASK_STUDIO_BIN=PATH runs that binary instead of ./target/release/unmask-studio
# (and skips the cargo build).
ensure_packages() {
  local pkgs="xvfb xauth libvulkan1 mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1 libglx-mesa0 libgl1-mesa-dri libx11-xcb1 libxcursor1 libxi6 libxkbcommon-x11-0 libwayland-client0 imagemagick x11-utils $*"
  local missing="" p
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  if [ -n "${UNMASK_STUDIO_BIN:-}" ]; then
    [ -x "$UNMASK_STUDIO_BIN" ] || { echo "UNMASK_STUDIO_BIN=$UNMASK_STUDIO_BIN is not executable" >&2; return 1; }
  else
    cargo build --release -p unmask-studio >&2
  fi
}

start_studio() {
  local log=$1
  shift
  export XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR"
  local n=$((90 + RANDOM % 100))
  while [ -e "/tmp/.X$n-lock" ]; do n=$((n + 1)); done   # a display in use
  local display=:$n
  Xvfb "$display" -screen 0 1280x820x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $app $xvfb 2>/dev/null || true' EXIT
  export DISPLAY=$display
  # wait until the display answers (a busy machine takes more than a second)
  for _ in $(seq 1 40); do
    xdpyinfo >/dev/null 2>&1 && break
    sleep 0.25
  done
  "${UNMASK_STUDIO_BIN:-./target/release/unmask-studio}" "$@" >"$log" 2>&1 &
  app=$!
  # wait for the window, then give the model and first frames time to settle
  for _ in $(seq 1 60); do
    if xwininfo -root -tree 2>/dev/null | grep -q "Unmask Studio"; then break; fi
    sleep 0.5
  done
  sleep "${SETTLE:-4}"
}
