#!/usr/bin/env bash
# `make demo`: creates the sample builder from builder.toml.example with the offline test images,
# buildpacks and lifecycle under testdata/, then inspects it. Nothing is downloaded: CNBX_HOME is
# a fresh copy of testdata/cnbx-home, whose local store already holds the build and run images
# (and the run image's mirror), as `docker pull` would for pack. PACK_HOME (the configuration,
# shared with pack) is an empty directory inside it, so that nothing of your own configuration
# changes what the demo does, and the demo changes nothing in it.
#
#   scripts/demo.sh CNBX_BIN DEMO_HOME [IMAGE]
#
# DEMO_HOME is removed and re-created. The CLI test `demo_prints_no_warning` runs this script
# and snapshots what it prints.
set -euo pipefail

if (($# < 2 || $# > 3)); then
  echo "usage: $0 CNBX_BIN DEMO_HOME [IMAGE]" >&2
  exit 2
fi
absolute() { if [[ $1 == /* ]]; then echo "$1"; else echo "$PWD/$1"; fi; }
cnbx=$(absolute "$1")
home=$(absolute "$2")
image=${3:-cnbx.test/demo-builder:latest}
[[ -x $cnbx ]] || { echo "$0: no cnbx binary at $cnbx" >&2; exit 1; }
case $home in
  / | "$HOME" | "$HOME/") echo "$0: refusing to use $home as DEMO_HOME (it is removed first)" >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf "$home"
cp -R testdata/cnbx-home "$home"

mkdir -p "$home/pack-home"
run() {
  printf '$ cnbx %s\n' "$*"
  CNBX_HOME=$home PACK_HOME=$home/pack-home "$cnbx" "$@"
}
run builder create "$image" --config builder.toml.example --pull-policy never
echo
run builder inspect "$image"
