#!/usr/bin/env bash
# cnbx benchmark (`make bench`). See docs/performance.md for what it measures and the latest
# results. It generates realistic inputs from files already on this machine (cached in
# $BENCH_DIR/inputs), then measures side by side, in one run:
#
#   (a) cnbx cold create into an oci: layout, with a fresh CNBX_HOME holding only the base images
#   (b) cnbx warm create with unchanged inputs (same CNBX_HOME, fresh output directory)
#   (c) the same image scripted by hand: skopeo copy + one umoci insert per buildpack and for the
#       lifecycle (+ one for /cnb/{order,run,stack}.toml) + umoci config for the labels + umoci gc
#   (d) the compression floor: tar | gzip -6 of the same directories, two at a time (xargs -P2)
#
# The steps run in interleaved rounds (one warm-up round, then BENCH_RUNS measured ones, each
# running every step once in a rotating order), so load from anything else on the machine hits
# all of them alike. It prints medians, ratios to (c), output sizes (du of the output
# directories) and peak RSS (/usr/bin/time), ending with a markdown table. Timings are reported,
# never asserted: the exit status is 0 unless a step fails (all steps run even if one fails).
#
# Environment:
#   BENCH_DIR    work directory                  (default: <repo>/target/bench)
#   BENCH_RUNS   measured rounds                 (default: 5)
#   CNBX_BIN     cnbx binary to measure          (default: build $CARGO_TARGET_DIR/release/cnbx,
#                                                 CARGO_TARGET_DIR defaulting to <repo>/target)
#   CARGO        the cargo command               (default: cargo)
#   BENCH_REGEN  set to 1 to regenerate inputs
#   CNBX_NO_INSTALL  set to 1 to never install missing tools (see scripts/require-tools.sh)
#
# Needs: bash, GNU coreutils/findutils/tar/time, gzip, skopeo, umoci. Missing ones are installed
# first when possible (as root or with password-less sudo), else it stops with the command to run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/scripts/require-tools.sh" --for "bench/run.sh" skopeo:skopeo umoci:umoci /usr/bin/time:time \
  gzip:gzip tar:tar xargs:findutils shuf:coreutils du:coreutils awk:mawk

BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench}
RUNS=${BENCH_RUNS:-5}
INPUTS=$BENCH_DIR/inputs
RUN_DIR=$BENCH_DIR/run
BASE_HOME=$ROOT/testdata/cnbx-home
STORE=$BASE_HOME/store
BUILD_IMAGE=cnbx.test/build:jammy
RUN_IMAGE=cnbx.test/run:jammy
NUM_BPS=12
MIB=1048576
# Bump when the input generation changes, so cached inputs are rebuilt.
INPUTS_VERSION=3

export LC_ALL=C

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[[ -f $STORE/index.json ]] || die "missing $STORE (testdata/cnbx-home)"

# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

# A deterministic, endless byte stream for shuf, so the same machine always picks the same files.
seeded() { yes "cnbx-bench-seed-$1"; }

gen_inputs() {
  log "generating inputs in $INPUTS (cached; BENCH_REGEN=1 to redo)"
  rm -rf "$INPUTS"
  mkdir -p "$INPUTS/buildpacks" "$INPUTS/lifecycle-src/lifecycle" "$INPUTS/cnb"
  local tmp=$INPUTS/.tmp
  mkdir -p "$tmp"

  # Buildpack payloads: real files from /usr/lib and /usr/share (libraries, Python/Perl modules,
  # data, docs...), shuffled with a fixed seed and dealt out until each buildpack holds its
  # target size (10..15 MiB). Files over 4 MiB and paths with whitespace are left out.
  { find /usr/lib /usr/share -xdev -type f -readable -size -4M -printf '%s\t%p\n' 2>/dev/null || true; } \
    | awk -F'\t' '$2 !~ /[ \t\\]/ { print $1 "\t" substr($2, 6) }' \
    | sort -t$'\t' -k2,2 \
    | shuf --random-source=<(seeded files) >"$tmp/files"
  awk -F'\t' -v nbps="$NUM_BPS" -v mib="$MIB" -v tmp="$tmp" '
    function next_bp() { bp++; acc = 0; target = (10 + (bp * 5) % 6) * mib }
    BEGIN { next_bp() }
    bp > nbps { exit }
    acc + $1 <= target {
      print $2 > sprintf("%s/bp-%d.list", tmp, bp)
      acc += $1
      if (target - acc < 256 * 1024) next_bp()
    }
    END { if (bp <= nbps) { print "not enough files under /usr/lib and /usr/share" > "/dev/stderr"; exit 1 } }
  ' "$tmp/files"

  local n dir
  for n in $(seq 1 "$NUM_BPS"); do
    dir=$INPUTS/buildpacks/bp-$n
    mkdir -p "$dir/bin" "$dir/payload"
    tar -C /usr -cf - --no-recursion -T "$tmp/bp-$n.list" | tar -C "$dir/payload" -xf -
    cat >"$dir/buildpack.toml" <<EOF
api = "0.10"

[buildpack]
  id = "bench/bp-$n"
  version = "1.0.0"
  name = "Bench Buildpack $n"

[[targets]]
  os = "linux"
  arch = "amd64"
EOF
    cat >"$dir/bin/detect" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
exit 0
EOF
    cat >"$dir/bin/build" <<EOF
#!/usr/bin/env bash
set -euo pipefail
layers_dir=\$1
echo "---> bench/bp-$n"
cp -R "\$CNB_BUILDPACK_DIR/payload" "\$layers_dir/payload"
EOF
    chmod 0755 "$dir/bin/detect" "$dir/bin/build"
  done

  # Lifecycle: lifecycle.toml from testdata plus the nine phase binaries, each the concatenation
  # of real executables from /usr/bin, /usr/sbin, /usr/libexec (shuffled with a fixed seed)
  # until ~30 MiB in total.
  cp "$ROOT/testdata/lifecycle/src/lifecycle.toml" "$INPUTS/lifecycle-src/lifecycle.toml"
  local exe_dirs=() d
  for d in /usr/bin /usr/sbin /usr/libexec; do [[ -d $d && ! -L $d ]] && exe_dirs+=("$d"); done
  { find "${exe_dirs[@]}" -xdev -type f -readable -perm -u+x -size +64k -size -2M -printf '%s\t%p\n' 2>/dev/null || true; } \
    | awk -F'\t' '$2 !~ /[ \t\\]/' | sort -t$'\t' -k2,2 \
    | shuf --random-source=<(seeded lifecycle) >"$tmp/exes"
  local phases=(analyzer builder creator detector exporter launcher restorer rebaser extender)
  local per_phase=$((30 * MIB / ${#phases[@]})) size path phase_bytes
  exec 3<"$tmp/exes"
  for phase in "${phases[@]}"; do
    : >"$INPUTS/lifecycle-src/lifecycle/$phase"
    phase_bytes=0
    while ((per_phase - phase_bytes >= 256 * 1024)); do
      IFS=$'\t' read -r size path <&3 || die "not enough executables under /usr/bin, /usr/sbin, /usr/libexec"
      ((phase_bytes + size <= per_phase)) || continue
      cat "$path" >>"$INPUTS/lifecycle-src/lifecycle/$phase"
      phase_bytes=$((phase_bytes + size))
    done
    chmod 0755 "$INPUTS/lifecycle-src/lifecycle/$phase"
  done
  exec 3<&-
  tar -C "$INPUTS/lifecycle-src" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -cf - lifecycle.toml lifecycle | gzip -6 -n >"$INPUTS/lifecycle.tgz"

  # builder.toml: every buildpack as a directory, one order group listing them all.
  {
    echo '# Generated by bench/run.sh'
    echo 'description = "cnbx benchmark builder"'
    echo
    for n in $(seq 1 "$NUM_BPS"); do
      printf '[[buildpacks]]\n  uri = "%s"\n\n' "$INPUTS/buildpacks/bp-$n"
    done
    echo '[[order]]'
    for n in $(seq 1 "$NUM_BPS"); do
      printf '  [[order.group]]\n    id = "bench/bp-%d"\n    version = "1.0.0"\n' "$n"
    done
    printf '\n[build]\n  image = "%s"\n\n' "$BUILD_IMAGE"
    printf '[[run.images]]\n  image = "%s"\n\n' "$RUN_IMAGE"
    printf '[lifecycle]\n  uri = "%s"\n' "$INPUTS/lifecycle.tgz"
  } >"$INPUTS/builder.toml"

  # The files pack writes under /cnb, for the hand-made image (c).
  {
    echo '[[order]]'
    for n in $(seq 1 "$NUM_BPS"); do
      printf '\n  [[order.group]]\n    id = "bench/bp-%d"\n    version = "1.0.0"\n' "$n"
    done
  } >"$INPUTS/cnb/order.toml"
  printf '[[images]]\n  image = "%s"\n' "$RUN_IMAGE" >"$INPUTS/cnb/run.toml"
  printf '[run-image]\n  image = "%s"\n' "$RUN_IMAGE" >"$INPUTS/cnb/stack.toml"

  rm -rf "$tmp"
  echo "$INPUTS_VERSION" >"$INPUTS/.done"
}

if [[ ${BENCH_REGEN:-0} == 1 || ! -f $INPUTS/.done || $(cat "$INPUTS/.done") != "$INPUTS_VERSION" ]]; then
  gen_inputs
else
  log "reusing inputs in $INPUTS"
fi

BP_DIRS=()
for n in $(seq 1 "$NUM_BPS"); do BP_DIRS+=("$INPUTS/buildpacks/bp-$n"); done
LIFECYCLE_DIR=$INPUTS/lifecycle-src

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes() { du -sb "$1" | cut -f1; }
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# --------------------------------------------------------------------------------------------
# The cnbx binary
# --------------------------------------------------------------------------------------------

if [[ -z ${CNBX_BIN:-} ]]; then
  log "cargo build --release -p cnbx"
  (cd "$ROOT" && ${CARGO:-cargo} build --release -p cnbx --quiet)
  target_dir=${CARGO_TARGET_DIR:-target}
  [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
  CNBX_BIN=$target_dir/release/cnbx
fi
[[ -x $CNBX_BIN ]] || die "no cnbx binary at $CNBX_BIN"

# --------------------------------------------------------------------------------------------
# Step scripts (each run is `bash <prepare script>`, untimed, then `bash <script>`, timed)
# --------------------------------------------------------------------------------------------

rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/scripts" "$RUN_DIR/results" "$RUN_DIR/logs"
S=$RUN_DIR/scripts
R=$RUN_DIR/results

# (a) cold: fresh CNBX_HOME (a copy of testdata/cnbx-home, base images only) and fresh output.
cat >"$S/prep-cold.sh" <<EOF
set -euo pipefail
rm -rf "$RUN_DIR/cold-home" "$RUN_DIR/cold-out"
cp -R "$BASE_HOME" "$RUN_DIR/cold-home"
find "$RUN_DIR/cold-home" -name .cnbx.lock -delete
EOF
cat >"$S/cnbx-cold.sh" <<EOF
exec env CNBX_HOME="$RUN_DIR/cold-home" "$CNBX_BIN" builder create "oci:$RUN_DIR/cold-out:latest" \\
  --config "$INPUTS/builder.toml" --pull-policy never --target linux/amd64
EOF

# (b) warm: one home, warmed up by a first create; fresh output directory each run.
cat >"$S/prep-warm.sh" <<EOF
set -euo pipefail
rm -rf "$RUN_DIR/warm-out"
EOF
cat >"$S/cnbx-warm.sh" <<EOF
exec env CNBX_HOME="$RUN_DIR/warm-home" "$CNBX_BIN" builder create "oci:$RUN_DIR/warm-out:latest" \\
  --config "$INPUTS/builder.toml" --pull-policy never --target linux/amd64
EOF

# (c) by hand: skopeo + umoci. Labels are the ones pack sets, with comparable content.
order_json='[{"group":['
layers_json='{'
for n in $(seq 1 "$NUM_BPS"); do
  sep=$([[ $n == 1 ]] && echo '' || echo ',')
  order_json+="$sep{\"id\":\"bench/bp-$n\",\"version\":\"1.0.0\"}"
  layers_json+="$sep\"bench/bp-$n\":{\"1.0.0\":{\"api\":\"0.10\",\"layerDiffID\":\"sha256:0\",\"targets\":[{\"os\":\"linux\",\"arch\":\"amd64\"}]}}"
done
order_json+=']}]'
layers_json+='}'
metadata_json="{\"description\":\"cnbx benchmark builder\",\"buildpacks\":[],\"stack\":{\"runImage\":{\"image\":\"$RUN_IMAGE\"}},\"images\":[{\"image\":\"$RUN_IMAGE\"}],\"lifecycle\":{\"version\":\"0.21.0\"},\"createdBy\":{\"name\":\"bench/run.sh\",\"version\":\"\"}}"
{
  echo 'set -euo pipefail'
  echo "out=$RUN_DIR/umoci-out"
  echo 'rm -rf "$out"'
  printf 'skopeo copy --quiet --override-os linux --override-arch amd64 %q %q\n' \
    "oci:$STORE:$BUILD_IMAGE" 'oci:'"$RUN_DIR"'/umoci-out:latest'
  for n in $(seq 1 "$NUM_BPS"); do
    printf 'umoci insert --image "$out:latest" %q /cnb/buildpacks/bench_bp-%d/1.0.0\n' "$INPUTS/buildpacks/bp-$n" "$n"
  done
  printf 'umoci insert --image "$out:latest" %q /cnb/lifecycle\n' "$LIFECYCLE_DIR/lifecycle"
  printf 'umoci insert --image "$out:latest" %q /cnb\n' "$INPUTS/cnb"
  printf 'umoci config --image "$out:latest" --config.workingdir /layers --config.user 1000:1000'
  printf ' \\\n  --config.label %q' \
    "io.buildpacks.builder.metadata=$metadata_json" \
    "io.buildpacks.buildpack.order=$order_json" \
    "io.buildpacks.buildpack.layers=$layers_json" \
    "io.buildpacks.lifecycle.version=0.21.0" \
    'io.buildpacks.lifecycle.apis={"buildpack":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12"]},"platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15"]}}'
  echo
  echo 'umoci gc --layout "$out"'
} >"$S/umoci.sh"

# (d) floor: the same directories through tar | gzip -6, two at a time.
printf '%s\n' "${BP_DIRS[@]}" "$LIFECYCLE_DIR" >"$RUN_DIR/floor-dirs"
cat >"$S/floor.sh" <<EOF
set -euo pipefail
rm -rf "$RUN_DIR/floor-out"
mkdir -p "$RUN_DIR/floor-out"
xargs -P2 -I{} sh -c 'tar -C "\$1" -cf - . | gzip -6 >"$RUN_DIR/floor-out/\$(basename "\$1").tar.gz"' sh {} <"$RUN_DIR/floor-dirs"
EOF

# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

# All steps run in rounds: one unmeasured warm-up round (page cache; it also warms (b)'s home),
# then $RUNS measured rounds, each running every step once, in an order rotated every round. So
# load from anything else on the machine hits all steps alike, and the ratios compare runs made
# at the same time. Wall time comes from date(1) around the step (its prepare script excluded),
# peak RSS from /usr/bin/time (largest process of the step).
STEPS=(cold warm umoci floor)
declare -A SCRIPT=([cold]=cnbx-cold.sh [warm]=cnbx-warm.sh [umoci]=umoci.sh [floor]=floor.sh)
declare -A PREP=([cold]=prep-cold.sh [warm]=prep-warm.sh [umoci]= [floor]=)
declare -A OUT=([cold]=$RUN_DIR/cold-out [warm]=$RUN_DIR/warm-out [umoci]=$RUN_DIR/umoci-out [floor]=$RUN_DIR/floor-out)
declare -A STATUS MEDIAN MIN MAX RSS SIZE
FAILED=0
for key in "${STEPS[@]}"; do STATUS[$key]=ok; RSS[$key]=0; done

rm -rf "$RUN_DIR/warm-home"
cp -R "$BASE_HOME" "$RUN_DIR/warm-home"
find "$RUN_DIR/warm-home" -name .cnbx.lock -delete
echo "round,step,seconds,max_rss_kib" >"$R/times.csv"

# run_step ROUND KEY: one run of a step; appends to times.csv (unless warm-up round 0).
run_step() {
  local round=$1 key=$2 t0 t1 rss
  [[ ${STATUS[$key]} == ok ]] || return 0
  if [[ -n ${PREP[$key]} ]] && ! bash "$S/${PREP[$key]}" >"$RUN_DIR/logs/$key.log" 2>&1; then
    t0=
  else
    t0=$(date +%s%N)
    if /usr/bin/time -f '%M' -o "$R/$key.rss" bash "$S/${SCRIPT[$key]}" >"$RUN_DIR/logs/$key.log" 2>&1; then
      t1=$(date +%s%N)
    else
      t0=
    fi
  fi
  if [[ -z $t0 ]]; then
    log "$key FAILED (round $round); its output:"
    sed 's/^/    /' "$RUN_DIR/logs/$key.log" >&2
    STATUS[$key]=FAILED
    FAILED=1
    return 0
  fi
  rss=$(tail -1 "$R/$key.rss")
  ((round == 0)) && return 0
  echo "$round,$key,$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.4f", n / 1e9 }'),$rss" >>"$R/times.csv"
  ((rss > RSS[$key])) && RSS[$key]=$rss
  return 0
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "inputs: $NUM_BPS buildpacks, $(mib "$(file_bytes "$INPUTS/buildpacks")") MiB;" \
  "lifecycle $(mib "$(file_bytes "$LIFECYCLE_DIR/lifecycle")") MiB ($(mib "$(stat -c %s "$INPUTS/lifecycle.tgz")") MiB .tgz)"

for round in $(seq 0 "$RUNS"); do
  order=()
  for i in "${!STEPS[@]}"; do order+=("${STEPS[$(((i + round) % ${#STEPS[@]}))]}"); done
  log "round $round/$RUNS$([[ $round == 0 ]] && echo ' (warm-up, not measured)'): ${order[*]}"
  for key in "${order[@]}"; do run_step "$round" "$key"; done
done

# seconds of KEY's runs, one a line
times_of() { awk -F, -v k="$1" '$2 == k { print $3 }' "$R/times.csv"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for key in "${STEPS[@]}"; do
  [[ ${STATUS[$key]} == ok ]] || continue
  MEDIAN[$key]=$(times_of "$key" | median)
  MIN[$key]=$(times_of "$key" | sort -g | head -1)
  MAX[$key]=$(times_of "$key" | sort -g | tail -1)
  RSS[$key]=$(awk -v k="${RSS[$key]}" 'BEGIN { printf "%.0f", k / 1024 }')
  SIZE[$key]=$(bytes "${OUT[$key]}")
done
# median over the rounds of KEY's time / umoci's time in the same round
paired_ratio() {
  [[ ${STATUS[$1]} == ok && ${STATUS[umoci]} == ok ]] || { echo "—"; return; }
  awk -F, -v k="$1" '$2 == k { a[$1] = $3 } $2 == "umoci" { b[$1] = $3 } END { for (r in a) if (r in b) print a[r] / b[r] }' \
    "$R/times.csv" | median | awk '{ printf "%.3f", $1 }'
}

# Same image cold and warm? (manifest digest of the tag; layers reused means identical blobs)
same_image=n/a
if [[ ${STATUS[cold]} == ok && ${STATUS[warm]} == ok ]]; then
  d_cold=$(grep -o '"digest":"[^"]*"' "$RUN_DIR/cold-out/index.json" | sort | tr '\n' ' ')
  d_warm=$(grep -o '"digest":"[^"]*"' "$RUN_DIR/warm-out/index.json" | sort | tr '\n' ' ')
  same_image=$([[ $d_cold == "$d_warm" ]] && echo yes || echo no)
fi

# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

ratio() { # $1 / umoci median
  local key=$1
  if [[ ${STATUS[$key]:-} == ok && ${STATUS[umoci]:-} == ok ]]; then
    awk -v a="${MEDIAN[$key]}" -v b="${MEDIAN[umoci]}" 'BEGIN { printf "%.3f", a / b }'
  else
    echo "—"
  fi
}
cell() { [[ ${STATUS[$1]:-} == ok ]] && printf '%.3f' "$2" || echo "—"; }
row() {
  local key=$1 label=$2
  if [[ ${STATUS[$key]:-} == ok ]]; then
    printf '| %s | %.3f | %.3f–%.3f | %s | %s | %s |\n' "$label" "${MEDIAN[$key]}" "${MIN[$key]}" \
      "${MAX[$key]}" "$(ratio "$key")" "${RSS[$key]}" "$(mib "${SIZE[$key]}")"
  else
    printf '| %s | FAILED | — | — | — | — |\n' "$label"
  fi
}
check() { # label, ok-expression result
  printf -- '- %s: %s\n' "$1" "$2"
}
verdict() { # value, limit (value <= limit?)
  [[ $1 == "—" || -z $1 ]] && { echo "not measured"; return; }
  awk -v v="$1" -v l="$2" 'BEGIN { print (v <= l ? "met" : "NOT met") }'
}

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
bp_range=$(for d in "${BP_DIRS[@]}"; do file_bytes "$d"; done | sort -n \
  | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.1f–%.1f", lo / 1048576, hi / 1048576 }')
cnbx_version=$("$CNBX_BIN" --version 2>/dev/null | head -1) || cnbx_version="cnbx (version unknown)"
max_cnbx_rss=—
if [[ ${STATUS[cold]} == ok && ${STATUS[warm]} == ok ]]; then
  max_cnbx_rss=$(printf '%s\n' "${RSS[cold]}" "${RSS[warm]}" | sort -n | tail -1)
fi

{
  echo
  echo "## cnbx benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $cpu, $mem RAM, Linux $(uname -r)."
  echo "Tools: $cnbx_version, $(skopeo --version | head -1)," \
    "umoci $(umoci --version | awk '{ print $3 }'), $(gzip --version | head -1)."
  echo "Inputs: $NUM_BPS buildpack directories of $bp_range MiB, $(mib "$(file_bytes "$INPUTS/buildpacks")") MiB in total" \
    "($(du -s --inodes "$INPUTS/buildpacks" | cut -f1) files and directories); lifecycle" \
    "$(mib "$(file_bytes "$LIFECYCLE_DIR/lifecycle")") MiB ($(mib "$(stat -c %s "$INPUTS/lifecycle.tgz")") MiB as .tgz)."
  echo "Runs per step: $RUNS, interleaved (one warm-up round first); times in seconds. Load average at start: $LOAD_AT_START," \
    "at end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| step | median (s) | min–max (s) | × umoci | peak RSS (MiB) | output (MiB) |"
  echo "|---|---:|---:|---:|---:|---:|"
  row cold "(a) cnbx cold create"
  row warm "(b) cnbx warm create"
  row umoci "(c) skopeo + umoci insert ×$((NUM_BPS + 2)) + umoci config"
  row floor "(d) floor: tar \| gzip -6, xargs -P2"
  echo
  check "cold ≤ 0.8 × umoci (ratio of medians $(ratio cold); median of per-round ratios $(paired_ratio cold))" \
    "$(verdict "$(ratio cold)" 0.8)"
  check "warm ≤ 0.1 × umoci (ratio of medians $(ratio warm); median of per-round ratios $(paired_ratio warm))" \
    "$(verdict "$(ratio warm)" 0.1)"
  check "cnbx peak RSS ≤ 200 MiB ($max_cnbx_rss)" "$(verdict "$max_cnbx_rss" 200)"
  check "warm output identical to cold (index digests)" "$same_image"
} | tee "$R/table.md"

echo >&2
log "results: $R (table.md, times.csv: every measured run); step logs: $RUN_DIR/logs"
if ((FAILED)); then
  log "some steps FAILED (see above)"
  exit 1
fi
