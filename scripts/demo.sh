#!/usr/bin/env bash
# Usage: scripts/demo.sh [BUILD_DIR]   (default build/release)
#
# Runs every example, in number order: for each examples/NN_<name>.cpp in the source tree, the
# binary BUILD_DIR/examples/NN_<name>, with a header, its output and its wall time, then a
# summary. Fails if any example fails or was not built. (Going by the sources, not the build
# directory, keeps a stale binary of a deleted example out of the run.)
set -uo pipefail

build_dir=${1:-build/release}
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LC_ALL=C  # number order for the glob below

shopt -s nullglob
sources=("$source_dir"/examples/[0-9][0-9]_*.cpp)
if ((${#sources[@]} == 0)); then
    echo "demo: there are no examples in $source_dir/examples" >&2
    exit 1
fi

failed=()
total_start=$(date +%s%N)
for source in "${sources[@]}"; do
    name=$(basename "$source" .cpp)
    exe="$build_dir/examples/$name"
    echo "=== $name ==="
    if [[ ! -x "$exe" ]]; then
        echo "--- $name: FAILED, $exe was not built"
        echo
        failed+=("$name")
        continue
    fi
    start=$(date +%s%N)
    "$exe"
    rc=$?
    elapsed_ms=$((($(date +%s%N) - start) / 1000000))
    if ((rc == 0)); then
        printf -- '--- %s: ok (%d.%03d s)\n\n' "$name" $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
    else
        printf -- '--- %s: FAILED with exit status %d (%d.%03d s)\n\n' \
            "$name" "$rc" $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
        failed+=("$name")
    fi
done
total_ms=$((($(date +%s%N) - total_start) / 1000000))

passed=$((${#sources[@]} - ${#failed[@]}))
printf '=== summary: %d of %d examples passed in %d.%03d s\n' \
    "$passed" "${#sources[@]}" $((total_ms / 1000)) $((total_ms % 1000))
if ((${#failed[@]} > 0)); then
    echo "failed: ${failed[*]}"
    exit 1
fi
