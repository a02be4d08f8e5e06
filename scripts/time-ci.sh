#!/usr/bin/env bash
# Times CI as a clean machine runs it: clones HEAD into a fresh folder (empty target/, ../shared
# linked beside it) and runs `.ci/run`'s steps one by one, printing seconds since the start
# after each. The README's CI figure comes from this.
#
#   scripts/time-ci.sh [WORK_DIR]     (default /tmp/overlap-slam-ci)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/overlap-slam-ci}
rm -rf "$work" && mkdir -p "$work"
git clone -q "$repo" "$work/repo"
[ -e "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$work/shared"
cd "$work/repo"
start=$(date +%s)
step() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 || { echo "$name: failed at $(($(date +%s) - start)) s, see $work/$name.log"; exit 1; }
    echo "$name: done at $(($(date +%s) - start)) s"
}
step pip python3 -m pip install --quiet --disable-pip-version-check "rosbags==0.11.9" numpy
step fmt cargo fmt --check
step clippy cargo clippy --release --all-targets -- -D warnings
step test-build cargo test --release --no-run
step tests cargo test --release
