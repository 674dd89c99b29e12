#!/usr/bin/env bash
# Makes sure the system tools a make target needs are installed (`make test`, `make bench`).
#
#   scripts/require-tools.sh [--for WHAT] TOOL:PACKAGE...
#
# TOOL is a command looked up on PATH, or the absolute path of an executable; PACKAGE is the
# Debian package that provides it. If every TOOL is there, this prints nothing and succeeds.
# Otherwise:
#   * as root, or with password-less sudo, when apt-get is on PATH: runs `apt-get update` once,
#     then `apt-get install -y --no-install-recommends` with the missing tools' packages, and
#     checks again;
#   * else, or when CNBX_NO_INSTALL=1 is set: prints one message naming the missing tools and
#     the exact command that installs them, and exits with status 1.
# WHAT names the caller in messages (default: "this step").
#
# Besides bash builtins it runs only apt-get, sudo and env, and those only to install.
set -euo pipefail

what="this step"
if [[ ${1:-} == --for ]]; then
  what=${2:?--for needs a value}
  shift 2
fi
(($# > 0)) || { echo "usage: $0 [--for WHAT] TOOL:PACKAGE..." >&2; exit 2; }

have() {
  if [[ $1 == /* ]]; then [[ -x $1 ]]; else command -v "$1" >/dev/null 2>&1; fi
}

# Sets `missing` (the tools not found) and `packages` (their packages, each once, in order).
find_missing() {
  missing=() packages=()
  local spec tool package p known
  for spec in "$@"; do
    tool=${spec%%:*} package=${spec#*:}
    if [[ $spec != *:* || -z $tool || -z $package ]]; then
      echo "$0: expected TOOL:PACKAGE, got '$spec'" >&2
      exit 2
    fi
    have "$tool" && continue
    missing+=("$tool")
    known=0
    for p in "${packages[@]}"; do [[ $p == "$package" ]] && known=1; done
    ((known)) || packages+=("$package")
  done
}

# "a, b, c"
listing() {
  local out=$1
  shift
  for item; do out+=", $item"; done
  echo "$out"
}

# How apt-get can be run here: "root", "sudo" (password-less) or "" (it cannot).
privilege() {
  command -v apt-get >/dev/null 2>&1 || return 0
  if ((EUID == 0)); then
    echo root
  elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    echo sudo
  fi
}

# The one message for tools that are still missing, then exit 1.
fail() {
  local sudo="sudo " where="Install them with:" after=""
  ((EUID == 0)) && sudo=""
  if ! command -v apt-get >/dev/null 2>&1; then
    where="On Debian or Ubuntu, install them with:"
    after=" (elsewhere, install the same tools with the system's package manager)"
  fi
  {
    echo "ERROR: $what needs tools that $1: $(listing "${missing[@]}"). $where"
    echo "    ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages[*]}"
    echo "then run $what again$after."
  } >&2
  exit 1
}

find_missing "$@"
((${#missing[@]} == 0)) && exit 0

how=""
[[ ${CNBX_NO_INSTALL:-} == 1 ]] || how=$(privilege)
[[ -n $how ]] || fail "are not installed"

apt=(env DEBIAN_FRONTEND=noninteractive apt-get)
[[ $how == sudo ]] && apt=(sudo "${apt[@]}")
echo "$what: installing ${packages[*]} with apt-get (missing: $(listing "${missing[@]}"))" >&2
if ! "${apt[@]}" update -q || ! "${apt[@]}" install -y -q --no-install-recommends "${packages[@]}"; then
  fail "apt-get could not install (its output is above)"
fi
find_missing "$@"
((${#missing[@]} == 0)) || fail "are still missing after installing their packages"
