# The report of bench/run.sh (sourced at its end): one markdown table of every step, then the
# checks against the targets of docs/performance.md. Reads $R/times.csv and $R/extra.csv.

# column COL of KEY's measured runs (3 seconds, 4 CPU seconds, 5 max RSS KiB), one a line
col_of() { awk -F, -v k="$1" -v c="$2" 'NR > 1 && $2 == k { print $c }' "$R/times.csv"; }
# values of the extra value NAME of KEY in the measured rounds, one a line
extra_of() { awk -F, -v k="$1" -v n="$2" 'NR > 1 && $1 > 0 && $2 == k && $3 == n { print $4 }' "$R/extra.csv"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
maximum() { sort -g | tail -1; }
minimum() { sort -g | head -1; }
ok() { [[ ${STATUS[$1]:-} == ok ]] && [[ -n $(col_of "$1" 3) ]]; }
med() { col_of "$1" 3 | median; }

human() { # bytes, as KiB below 1 MiB
  awk -v b="$1" 'BEGIN { if (b < 1048576) printf "%.1f KiB", b / 1024; else printf "%.1f MiB", b / 1048576 }'
}
f3() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }

# ratio KEY REF: ratio of the medians
ratio() {
  ok "$1" && ok "$2" || { echo "—"; return; }
  awk -v a="$(med "$1")" -v b="$(med "$2")" 'BEGIN { printf "%.3f", a / b }'
}
# paired_ratio KEY REF: median over the rounds of KEY's time / REF's time in the same round
paired_ratio() {
  ok "$1" && ok "$2" || { echo "—"; return; }
  awk -F, -v k="$1" -v r="$2" '$2 == k { a[$1] = $3 } $2 == r { b[$1] = $3 } END { for (i in a) if (i in b) print a[i] / b[i] }' \
    "$R/times.csv" | median | awk '{ printf "%.3f", $1 }'
}
verdict() { # value, limit (value <= limit?)
  [[ $1 == "—" || -z $1 ]] && { echo "not measured"; return; }
  awk -v v="$1" -v l="$2" 'BEGIN { print (v <= l ? "met" : "NOT met") }'
}
check() { printf -- '- %s: %s\n' "$1" "$2"; }

# added_bytes LAYOUT_DIR TAG: bytes of the layers of the image that the base image
# (cnbx.test/build:jammy, linux/amd64) does not have.
added_bytes() {
  local m base
  m=$(manifest_of "$1" "$2") || { echo 0; return; }
  base=$(manifest_of "$TEST_STORE" "$BUILD_IMAGE")
  awk 'NR == FNR { known[$1]; next } !($1 in known) { s += $2 } END { print s + 0 }' \
    <(layer_list "$base") <(layer_list "$m")
}

ref_name() {
  case $1 in
    *-umoci) echo "(c)" ;;
    s2-cold) echo "s2 (a)" ;;
    s2-warm) echo "s2 (b)" ;;
    s4b-skopeo) echo "floor" ;;
    eng-load) echo "(d)" ;;
    eng-archive) echo "(e)" ;;
    *) echo "$1" ;;
  esac
}

# What the last column says for KEY.
size_cell() {
  local key=$1 s=${SCEN[$1]} up down
  case $key in
    s1-cold | s2-cold | s1-warm | s2-warm | s1-umoci | s2-umoci)
      local dir=$RUN_DIR/$s/${key#*-}-out
      echo "layers added $(human "$(added_bytes "$dir" latest)"); layout $(human "$(bytes "$dir")")"
      ;;
    *-floor) echo "$(human "$(bytes "$RUN_DIR/$s/floor-out")") of .tar.gz" ;;
    s3-*) echo "layout $(human "$(bytes "$RUN_DIR/s3/${key#*-}-out")")" ;;
    s4*)
      up=$(extra_of "$key" up_bytes | median) || up=
      down=$(extra_of "$key" down_bytes | median) || down=
      [[ -n $up ]] && echo "↑ $(human "$up"), ↓ $(human "$down") (medians)" || echo "—"
      ;;
    big-cold) echo "largest layer $(human "$(extra_of big-cold largest_layer | maximum)") (gzip)" ;;
    eng-load) echo "archive $(human "$(stat -c %s "$ENG/builder.tar")")" ;;
    *) echo "" ;;
  esac
}

row() {
  local key=$1 first=$2 ref=${REF[$1]} r=""
  local scen=""
  ((first)) && scen=${SCEN[$key]}
  if ! ok "$key"; then
    printf '| %s | %s | %s | — | — | — | — | — | — |\n' "$scen" "${LABEL[$key]}" \
      "$([[ ${STATUS[$key]} == ok ]] && echo "not measured" || echo FAILED)"
    return
  fi
  if [[ -n $ref ]] && ok "$ref"; then r="$(ratio "$key" "$ref") × $(ref_name "$ref")"; else r="—"; fi
  printf '| %s | %s | %d | %.3f | %.3f–%.3f | %s | %.2f | %.0f | %s |\n' "$scen" "${LABEL[$key]}" \
    "$(col_of "$key" 3 | wc -l)" "$(med "$key")" "$(col_of "$key" 3 | minimum)" "$(col_of "$key" 3 | maximum)" "$r" \
    "$(col_of "$key" 4 | median)" "$(awk -v k="$(col_of "$key" 5 | maximum)" 'BEGIN { print k / 1024 }')" "$(size_cell "$key")"
}

inputs_line() {
  local s=$1 dir=$INPUTS/$1 lo_hi
  case $s in
    s1 | s2)
      lo_hi=$(for d in "$dir"/buildpacks/bp-*; do file_bytes "$d"; done | sort -n \
        | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f–%.1f", lo / 1048576, hi / 1048576 }')
      printf -- '- %s: %d buildpack directories of %s MiB, %s MiB in total, %s payload files' "$s" "$NUM_BPS" "$lo_hi" \
        "$(mib "$(file_bytes "$dir/buildpacks")")" "$(find "$dir"/buildpacks/*/payload -type f | wc -l)"
      [[ $s == s1 ]] && printf ' (real files from /usr/lib and /usr/share)' || printf ' (2–4 real ELF binaries, .so and executables, per buildpack)'
      printf '; lifecycle %s MiB (%s MiB as .tgz)%s.\n' "$(mib "$(file_bytes "$dir/lifecycle-src/lifecycle")")" \
        "$(mib "$(stat -c %s "$dir/lifecycle.tgz")")" \
        "$([[ $s == s1 ]] && echo ', each phase a concatenation of real executables' || echo ', each phase one real executable')"
      ;;
    s3) printf -- "- s3: s2's buildpacks and lifecycle on %s, as build and run images (users cnb 1000:1000 and 1001:1000, CNB_* env, io.buildpacks labels).\n" "$(cat "$dir/base")" ;;
    s4)
      printf -- '- s4: %s composite buildpackages (a main buildpack and %d dependencies of 14–20 MiB of real files, one layer each), %s MiB of layers (gzip -6) in a loopback docker-registry, referenced as docker://; base images cnbx.test/{build,run}:jammy pushed there; lifecycle of s2.\n' \
        "$(cat "$dir/packages")" "$S4_DEPS" "$(mib "$(awk '{ s += $2 } END { print s }' "$dir/layers")")"
      ;;
    eng) printf -- "- eng: s2's builder (linux/amd64) into a dockerd 20.10 the bench starts (vfs storage, no networking), with CNBX_LOCAL=engine.\n" ;;
    big) printf -- '- big: one buildpack archive (.tgz, %s MiB) of %s of real files: one layer of ~1 GiB.\n' \
      "$(mib "$(stat -c %s "$dir/big.tgz")")" "$(cat "$dir/info")" ;;
  esac
}

checks() {
  local s r p v
  for s in s1 s2; do
    has "$s" || continue
    r=$(ratio "$s-cold" "$s-umoci") p=$(paired_ratio "$s-cold" "$s-umoci")
    check "$s cold ≤ 0.65 × (c) (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 0.65)"
    r=$(ratio "$s-warm" "$s-umoci") p=$(paired_ratio "$s-warm" "$s-umoci")
    check "$s warm ≤ 0.05 × (c) (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 0.05)"
    if ok "$s-cold" && ok "$s-floor"; then
      v=$(awk -v a="$(added_bytes "$RUN_DIR/$s/cold-out" latest)" -v b="$(bytes "$RUN_DIR/$s/floor-out")" 'BEGIN { printf "%.3f", a / b }')
    else
      v="—"
    fi
    check "$s compressed layers added by cnbx ≤ 1.01 × gzip -6 of the same trees ($v)" "$(verdict "$v" 1.01)"
    if ok "$s-cold" && ok "$s-warm"; then
      v=no
      [[ $(jq -c '.manifests | map(.digest)' "$RUN_DIR/$s/cold-out/index.json") == "$(jq -c '.manifests | map(.digest)' "$RUN_DIR/$s/warm-out/index.json")" ]] \
        && v=yes
      check "$s warm output identical to cold (index digests)" "$v"
    fi
  done
  if has s3; then
    r=$(ratio s3-cold s2-cold) p=$(paired_ratio s3-cold s2-cold)
    check "s3 cold ≤ 1.15 × s2 cold (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 1.15)"
    r=$(ratio s3-reg s2-cold) p=$(paired_ratio s3-reg s2-cold)
    check "s3 from a registry into an empty home ≤ 1.15 × s2 cold (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 1.15)"
    if ok s3-warm; then
      v=$(extra_of s3-warm validation_hit | awk '{ h += $1 } END { printf "%d of %d warm runs", h, NR }')
      check "s3 later creates hit the validation cache (its entry read, not rewritten)" \
        "$v$(extra_of s3-warm validation_hit | grep -q 0 && echo ': NOT met' || echo ': met')"
    fi
  fi
  if has s4; then
    local pkgs
    pkgs=$(wc -l <"$S4/pkg-digests")
    if ok s4a-cold; then
      v=$(extra_of s4a-cold pkg_layers_uploaded | maximum)
      check "s4a no buildpackage layer uploaded (most in one cold run: $v of $pkgs; mounts per run: $(extra_of s4a-cold mounts | median))" \
        "$(verdict "$v" 0)"
      v=$(awk -F, 'NR > 1 && $1 > 0 && $2 == "s4a-cold" { x[$1, $3] = $4; r[$1] } END { m = -1e18; for (i in r) { d = x[i, "up_bytes"] - x[i, "new_bytes"]; if (d > m) m = d } printf "%.3f", m / 1048576 }' "$R/extra.csv")
      check "s4a cold: bytes uploaded ≤ layers new to the registry + 1 MiB (uploaded − new, worst run: $v MiB; new: $(human "$(extra_of s4a-cold new_bytes | maximum)"))" \
        "$(verdict "$v" 1)"
    fi
    if ok s4a-order; then
      v=$(extra_of s4a-order up_bytes | maximum)
      check "s4a after changing only [[order]]: uploads ≤ 1 MiB (most: $(human "$v"))" "$(verdict "$v" 1048576)"
      check "s4a after changing only [[order]]: ≤ 1 s (median $(f3 "$(med s4a-order)") s)" "$(verdict "$(med s4a-order)" 1)"
    fi
    r=$(ratio s4b s4b-skopeo) p=$(paired_ratio s4b s4b-skopeo)
    check "s4b ≤ 1.1 × skopeo copy of the same blobs (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 1.1)"
    r=$(ratio s4b-cold s4b-skopeo) p=$(paired_ratio s4b-cold s4b-skopeo)
    check "s4b cold (empty home) ≤ 1.1 × skopeo copy of the same blobs (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 1.1)"
    for v in s4a-cold s4b s4b-cold s4c-cold s4c-warm; do
      ok "$v" || continue
      p=$(extra_of "$v" pkg_layers_reused | minimum)
      check "$v package layers in the builder as the same blobs (fewest in one run: $p of $pkgs)" \
        "$([[ $p == "$pkgs" ]] && echo "met (none recompressed)" || echo "NOT met")"
    done
    if ok s4c-cold && ok s4c-warm; then
      check "s4c no buildpackage layer decompressed" "not visible from outside; CPU time cold $(col_of s4c-cold 4 | median) s, warm $(col_of s4c-warm 4 | median) s (see the method)"
    fi
  fi
  if has eng; then
    r=$(ratio eng-warm eng-load) p=$(paired_ratio eng-warm eng-load)
    check "eng warm ≤ 0.2 × docker load of the full docker-archive (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 0.2)"
    r=$(ratio eng-cold eng-archive) p=$(paired_ratio eng-cold eng-archive)
    check "eng cold ≤ 1.0 × (docker-archive create + docker load) (ratio of medians $r; median of per-round ratios $p)" "$(verdict "$r" 1.0)"
  fi
  local worst="" key k
  for key in "${STEPS[@]}"; do
    [[ $key == *-umoci || $key == *-floor || $key == *-skopeo || $key == eng-load ]] && continue
    ok "$key" || continue
    k=$(col_of "$key" 5 | maximum)
    [[ -z $worst ]] || ((k > ${worst%% *})) && worst="$k $key"
  done
  if [[ -n $worst ]]; then
    v=$(awk -v k="${worst%% *}" 'BEGIN { printf "%.0f", k / 1024 }')
    check "cnbx peak RSS ≤ 200 MiB in every scenario (largest: $v MiB, ${worst#* })" "$(verdict "$v" 200)"
  fi
}

report() {
  local cpu mem cnbx_version key prev=""
  cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  cnbx_version=$("$CNBX_BIN" --version 2>/dev/null | head -1) || cnbx_version="cnbx (version unknown)"
  [[ -n ${CNBX_COMMIT:-} ]] && cnbx_version+=" (built from $CNBX_COMMIT)"
  echo
  echo "## cnbx benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $cpu, $mem RAM, Linux $(uname -r)."
  echo "Tools: $cnbx_version, $(skopeo --version | head -1), umoci $(umoci --version | awk '{ print $3 }')," \
    "$(gzip --version | head -1), docker-registry $(docker-registry --version | awk '{ print $3 }')."
  echo "Rounds: $RUNS measured for s1–s3, $RUNS_SLOW for s4, 1 for big; interleaved after one warm-up round;" \
    "times in seconds. Load average at start: $LOAD_AT_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "Inputs:"
  echo
  for s in $SCENARIOS; do inputs_line "$s"; done
  echo
  echo "| scenario | step | runs | median (s) | min–max (s) | ratio (medians) | CPU (s) | peak RSS (MiB) | size / traffic |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
  for key in "${STEPS[@]}"; do
    row "$key" "$([[ ${SCEN[$key]} != "$prev" ]] && echo 1 || echo 0)"
    prev=${SCEN[$key]}
  done
  echo
  checks
}
