#!/usr/bin/env bash
# Checks that the Rust toolchain is recent enough before a make target builds, so that a missing
# or old toolchain gets one clear message instead of cargo's manifest or compiler errors. The
# toolchain is a prerequisite: this never installs it.
#
#   scripts/require-rust.sh [--for WHAT] VERSION      (VERSION: MAJOR.MINOR, e.g. 1.88)
#
# The compiler checked is $RUSTC if set (as cargo does), else `rustc` on PATH. WHAT names the
# caller in messages (default: "this step"). Only bash builtins are used besides the compiler.
set -euo pipefail

what="this step"
if [[ ${1:-} == --for ]]; then
  what=${2:?--for needs a value}
  shift 2
fi
if ! [[ ${1:-} =~ ^([0-9]+)\.([0-9]+)$ ]]; then
  echo "usage: $0 [--for WHAT] MAJOR.MINOR" >&2
  exit 2
fi
need=$1 need_major=${BASH_REMATCH[1]} need_minor=${BASH_REMATCH[2]}

rustc=${RUSTC:-rustc}
if ! version=$("$rustc" --version 2>/dev/null); then
  echo "ERROR: $what needs Rust $need or newer, and no Rust compiler ('$rustc') was found; install it from https://rustup.rs" >&2
  exit 1
fi
if ! [[ $version =~ ^rustc\ ([0-9]+)\.([0-9]+)\. ]]; then
  echo "ERROR: $what needs Rust $need or newer; cannot tell the version of '$rustc' from: $version" >&2
  exit 1
fi
have_major=${BASH_REMATCH[1]} have_minor=${BASH_REMATCH[2]}
if ((have_major < need_major || (have_major == need_major && have_minor < need_minor))); then
  echo "ERROR: $what needs Rust $need or newer, and this is $version; update it with \`rustup update stable\` (or install rustup from https://rustup.rs)" >&2
  exit 1
fi
