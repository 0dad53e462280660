#!/usr/bin/env bash
# Usage: scripts/ensure-deps.sh PACKAGE...
#
# Checks that the given Debian packages are installed. Missing ones are installed with apt-get
# when running as root; otherwise the command to install them is printed and the script fails.
set -euo pipefail

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "ensure-deps: not a Debian-based system; skipping the package check" >&2
    exit 0
fi

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    echo "ensure-deps: installing ${missing[*]}" >&2
    # Wait for another apt/dpkg run to finish instead of failing on its lock.
    apt-get -o DPkg::Lock::Timeout=600 update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"
else
    echo "sudo apt-get install -y ${missing[*]}"
    exit 1
fi
