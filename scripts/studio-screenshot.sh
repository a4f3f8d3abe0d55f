#!/usr/bin/env bash
# Starts unmask-studio in a virtual X display (Xvfb, Mesa software rendering),
# waits for its window and saves a screenshot.
#
# usage: scripts/studio-screenshot.sh OUT.png [IMAGE] [--model DIR]
# Installs the Debian packages it needs when they are missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: studio-screenshot.sh OUT.png [IMAGE] [--model DIR]}
shift
. scripts/xvfb-studio.sh
ensure_packages
export XDG_CONFIG_HOME=$(mktemp -d)   # fresh settings: the screenshot shows defaults
export XDG_STATE_HOME=$(mktemp -d)    # and no session to restore
start_studio /tmp/unmask-studio.log "$@"
import -window root "$out"
echo "saved $out" >&2
