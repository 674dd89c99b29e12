#!/usr/bin/env bash
# cnbx benchmark (`make bench`). See docs/performance.md for what it measures, the method and
# the latest results. It generates realistic inputs (bench/inputs.sh: real files from this
# machine and Debian's packages, cached in $BENCH_DIR/inputs), then measures every scenario in
# one interleaved run and ends with one markdown table:
#
#   s1   small files: cnbx cold / warm create, the skopeo + umoci pipeline, the tar | gzip -6 floor
#   s2   large binaries: the same four steps
#   s3   a Debian bookworm base image with s2's buildpacks: cnbx cold / warm create, and cold
#        with the base image pulled from a loopback registry into an empty CNBX_HOME
#   s4   20+ composite buildpackages (512+ MiB) in a loopback docker-registry, as docker:// URIs:
#        (a) --publish to the same registry: cold, warm, and after changing only [[order]];
#        (b) --publish to a second registry with a warm and with an empty CNBX_HOME, and
#            `skopeo copy` of the same blobs (the floor);
#        (c) into the local store: cold and warm
#   big  one buildpack of 1 GiB (a single 1 GiB layer): cnbx cold create, for its peak RSS
#   eng  s2's builder into a container engine (a dockerd the bench starts, as the tests do):
#        cnbx cold and warm, against `docker load` of the builder's docker-archive, a cold
#        docker-archive create + `docker load`, and `skopeo copy oci:... docker-daemon:...`
#
# Steps run in interleaved rounds (one unmeasured warm-up round, then measured ones, each
# running every step once in a rotating order), so load from anything else on the machine hits
# all of them alike. Timings are reported, never asserted: the exit status is 0 unless a step
# fails (all steps run even if one fails).
#
# Environment:
#   BENCH_DIR        work directory (no whitespace)     (default: <repo>/target/bench)
#   BENCH_RUNS       measured rounds for s1, s2, s3      (default: 5)
#   BENCH_RUNS_SLOW  measured rounds for s4              (default: BENCH_RUNS; big always runs once)
#   BENCH_SCENARIOS  which scenarios                     (default: "s1 s2 s3 s4 big eng")
#   CNBX_BIN         cnbx binary to measure              (default: build $CARGO_TARGET_DIR/release/cnbx,
#                                                         CARGO_TARGET_DIR defaulting to <repo>/target)
#   CARGO            the cargo command                   (default: cargo)
#   BENCH_REGEN      set to 1 to regenerate inputs
#   CNBX_NO_INSTALL  set to 1 to never install missing tools (see scripts/require-tools.sh)
#
# Needs: bash, GNU coreutils/findutils/tar/time, gzip, jq, curl, skopeo, umoci, docker-registry
# and (for s3) mmdebstrap, (for eng) Debian's docker.io run as root. Missing ones are installed first when possible (as root or with
# password-less sudo), else it stops with the command to run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCENARIOS=${BENCH_SCENARIOS:-"s1 s2 s3 s4 big eng"}
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
tools=(skopeo:skopeo umoci:umoci /usr/bin/time:time gzip:gzip tar:tar xargs:findutils shuf:coreutils
  du:coreutils awk:mawk jq:jq curl:curl docker-registry:docker-registry)
has s3 && tools+=(mmdebstrap:mmdebstrap)
has eng && tools+=(/usr/sbin/dockerd:docker.io docker:docker.io)
bash "$ROOT/scripts/require-tools.sh" --for "bench/run.sh" "${tools[@]}"

export LC_ALL=C
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench}
[[ $BENCH_DIR != *[[:space:]]* ]] || die "BENCH_DIR must not contain whitespace: $BENCH_DIR"
RUNS=${BENCH_RUNS:-5}
RUNS_SLOW=${BENCH_RUNS_SLOW:-$RUNS}
INPUTS=$BENCH_DIR/inputs
RUN_DIR=$BENCH_DIR/run
# cnbx reads pack's configuration ($PACK_HOME/config.toml): an empty one, so that the figures do
# not depend on the settings of whoever runs the benchmark.
export PACK_HOME=$BENCH_DIR/pack-home
mkdir -p "$PACK_HOME"
# Bare names are the cnbx store's (whether or not this machine runs Docker), except in the eng
# steps, which name their engine.
export CNBX_LOCAL=store
for s in $SCENARIOS; do
  case $s in s1 | s2 | s3 | s4 | big | eng) ;; *) die "unknown scenario '$s' in BENCH_SCENARIOS (s1 s2 s3 s4 big eng)" ;; esac
done
# shellcheck source=bench/inputs.sh
source "$ROOT/bench/inputs.sh"
[[ -f $TEST_STORE/index.json ]] || die "missing $TEST_STORE (testdata/cnbx-home)"

# --------------------------------------------------------------------------------------------
# Inputs and the cnbx binary
# --------------------------------------------------------------------------------------------

mkdir -p "$INPUTS"
# The previous version of this script kept s1's inputs at the top of $INPUTS.
if [[ -f $INPUTS/.done ]]; then
  log "removing the previous bench's inputs from $INPUTS (now in $INPUTS/s1)"
  rm -rf "$INPUTS/buildpacks" "$INPUTS/lifecycle-src" "$INPUTS/cnb" "$INPUTS/lifecycle.tgz" "$INPUTS/builder.toml" "$INPUTS/.done"
fi
# shellcheck disable=SC2086
ensure_inputs $SCENARIOS

if [[ -z ${CNBX_BIN:-} ]]; then
  log "cargo build --release -p cnbx"
  (cd "$ROOT" && ${CARGO:-cargo} build --release -p cnbx --quiet)
  target_dir=${CARGO_TARGET_DIR:-target}
  [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
  CNBX_BIN=$target_dir/release/cnbx
  CNBX_COMMIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || true)
fi
[[ -x $CNBX_BIN ]] || die "no cnbx binary at $CNBX_BIN"

rm -rf "$RUN_DIR"
# Outputs, homes and registry storage while it runs: s1-s3 about 1 GiB, s4 about 1.1 GiB at
# its peak (a warm CNBX_HOME and a cold one or registry B, each holding the packages), big
# about 0.8 GiB; the largest are removed after each run.
need_space "$BENCH_DIR" 3072 "measuring"
mkdir -p "$RUN_DIR/scripts" "$RUN_DIR/results" "$RUN_DIR/logs"
S=$RUN_DIR/scripts
R=$RUN_DIR/results
echo "round,step,seconds,cpu_seconds,max_rss_kib" >"$R/times.csv"
echo "round,step,name,value" >"$R/extra.csv"

cleanup() {
  reg_stop "$RUN_DIR/s3/reg" 2>/dev/null || true
  reg_stop "$RUN_DIR/s4/reg-a" 2>/dev/null || true
  reg_stop "$RUN_DIR/s4/reg-b" 2>/dev/null || true
  engine_stop 2>/dev/null || true
}
trap cleanup EXIT

# --------------------------------------------------------------------------------------------
# Steps. Each is a timed script $S/<key>.sh, with optional untimed functions prep_<key> ROUND
# (before) and post_<key> ROUND (after: accounting, checks, freeing disk), which run in a
# subshell and keep their state in files.
# --------------------------------------------------------------------------------------------

STEPS=()
declare -A SCEN LABEL RUNS_OF WARMUP REF
# step KEY SCENARIO RUNS WARMUP(0|1) REF LABEL
step() {
  STEPS+=("$1")
  SCEN[$1]=$2 RUNS_OF[$1]=$3 WARMUP[$1]=$4 REF[$1]=$5 LABEL[$1]=$6
}
# extra ROUND KEY NAME VALUE: a measured value besides time and RSS.
extra() { echo "$1,$2,$3,$4" >>"$R/extra.csv"; }

# create_script KEY HOME DEST CONFIG ARGS...: $S/KEY.sh runs `cnbx builder create` (DEST may be
# $(cat FILE) to be read when the step runs).
create_script() {
  local key=$1 home=$2 dest=$3 config=$4
  shift 4
  printf 'exec env CNBX_HOME=%q %q builder create "%s" --config %q --target linux/amd64' \
    "$home" "$CNBX_BIN" "$dest" "$config" >"$S/$key.sh"
  (($# == 0)) || printf ' %q' "$@" >>"$S/$key.sh"
  echo >>"$S/$key.sh"
}

# fresh_home DIR [TEMPLATE]: DIR as a copy of TEMPLATE (a CNBX_HOME), or empty.
fresh_home() {
  rm -rf "$1"
  if [[ -n ${2:-} ]]; then
    cp -R "$2" "$1"
    find "$1" -name .cnbx.lock -delete
  else
    mkdir -p "$1"
  fi
}

# --- s1, s2: directory buildpacks, against skopeo + umoci and tar | gzip -6 -------------------

# builder_steps SCENARIO: (a) cold, (b) warm, (c) skopeo + umoci, (d) floor, for the inputs in
# $INPUTS/SCENARIO with the test images.
builder_steps() {
  local s=$1 in=$INPUTS/$1 out=$RUN_DIR/$1 n
  mkdir -p "$out"
  step "$s-cold" "$s" "$RUNS" 1 "$s-umoci" "(a) cnbx cold create"
  eval "prep_$s-cold() { fresh_home $out/cold-home $ROOT/testdata/cnbx-home; rm -rf $out/cold-out; }"
  eval "post_$s-cold() { rm -rf $out/cold-home; }"
  create_script "$s-cold" "$out/cold-home" "oci:$out/cold-out:latest" "$in/builder.toml" --pull-policy never

  step "$s-warm" "$s" "$RUNS" 1 "$s-umoci" "(b) cnbx warm create"
  fresh_home "$out/warm-home" "$ROOT/testdata/cnbx-home"
  eval "prep_$s-warm() { rm -rf $out/warm-out; }"
  create_script "$s-warm" "$out/warm-home" "oci:$out/warm-out:latest" "$in/builder.toml" --pull-policy never

  # (c) by hand: skopeo + umoci. Labels are the ones pack sets, with comparable content.
  step "$s-umoci" "$s" "$RUNS" 1 "" "(c) skopeo + umoci insert ×$((NUM_BPS + 2)) + umoci config"
  local order_json='[{"group":[' layers_json='{' sep metadata_json
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
    echo "out=$out/umoci-out"
    echo 'rm -rf "$out"'
    printf 'skopeo copy --quiet --override-os linux --override-arch amd64 %q %q\n' \
      "oci:$TEST_STORE:$BUILD_IMAGE" "oci:$out/umoci-out:latest"
    for n in $(seq 1 "$NUM_BPS"); do
      printf 'umoci insert --image "$out:latest" %q /cnb/buildpacks/bench_bp-%d/1.0.0\n' "$in/buildpacks/bp-$n" "$n"
    done
    printf 'umoci insert --image "$out:latest" %q /cnb/lifecycle\n' "$in/lifecycle-src/lifecycle"
    printf 'umoci insert --image "$out:latest" %q /cnb\n' "$in/cnb"
    printf 'umoci config --image "$out:latest" --config.workingdir /layers --config.user 1000:1000'
    printf ' \\\n  --config.label %q' \
      "io.buildpacks.builder.metadata=$metadata_json" \
      "io.buildpacks.buildpack.order=$order_json" \
      "io.buildpacks.buildpack.layers=$layers_json" \
      "io.buildpacks.lifecycle.version=0.21.0" \
      'io.buildpacks.lifecycle.apis={"buildpack":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12"]},"platform":{"deprecated":[],"supported":["0.7","0.8","0.9","0.10","0.11","0.12","0.13","0.14","0.15"]}}'
    echo
    echo 'umoci gc --layout "$out"'
  } >"$S/$s-umoci.sh"

  # (d) floor: the same directories through tar | gzip -6, two at a time.
  step "$s-floor" "$s" "$RUNS" 1 "$s-umoci" "(d) floor: tar \\| gzip -6, xargs -P2"
  for n in $(seq 1 "$NUM_BPS"); do echo "$in/buildpacks/bp-$n"; done >"$out/floor-dirs"
  echo "$in/lifecycle-src" >>"$out/floor-dirs"
  cat >"$S/$s-floor.sh" <<EOF
set -euo pipefail
rm -rf "$out/floor-out"
mkdir -p "$out/floor-out"
xargs -P2 -I{} sh -c 'tar -C "\$1" -cf - . | gzip -6 >"$out/floor-out/\$(basename "\$1").tar.gz"' sh {} <"$out/floor-dirs"
EOF
}

# --- s3: a Debian base image ------------------------------------------------------------------

s3_steps() {
  local out=$RUN_DIR/s3 in=$INPUTS/s3
  mkdir -p "$out"
  local ref2=""
  has s2 && ref2=s2-cold
  step s3-cold s3 "$RUNS" 1 "$ref2" "cnbx cold create (base-image validation included)"
  prep_s3-cold() { fresh_home "$RUN_DIR/s3/cold-home" "$INPUTS/s3/home"; rm -rf "$RUN_DIR/s3/cold-out"; }
  post_s3-cold() {
    extra "$1" s3-cold validation_entries "$({ find "$RUN_DIR/s3/cold-home/cache/validation" -type f 2>/dev/null || true; } | wc -l)"
    rm -rf "$RUN_DIR/s3/cold-home"
  }
  create_script s3-cold "$out/cold-home" "oci:$out/cold-out:latest" "$in/builder.toml" --pull-policy never

  has s2 && ref2=s2-warm
  step s3-warm s3 "$RUNS" 1 "$ref2" "cnbx warm create"
  fresh_home "$out/warm-home" "$in/home"
  # A validation that is not found in the cache is done again and written again (a new file
  # replacing the old one); one that is found is only read. So: same inode and mtime = hit.
  validation_state() { { find "$RUN_DIR/s3/warm-home/cache/validation" -type f -printf '%p %i %T@\n' 2>/dev/null || true; } | sort; }
  prep_s3-warm() { rm -rf "$RUN_DIR/s3/warm-out"; validation_state >"$RUN_DIR/s3/validation-before"; }
  post_s3-warm() {
    validation_state >"$RUN_DIR/s3/validation-after"
    extra "$1" s3-warm validation_entries "$(wc -l <"$RUN_DIR/s3/validation-after")"
    if [[ -s $RUN_DIR/s3/validation-before ]] && cmp -s "$RUN_DIR/s3/validation-before" "$RUN_DIR/s3/validation-after"; then
      extra "$1" s3-warm validation_hit 1
    else
      extra "$1" s3-warm validation_hit 0
    fi
  }
  create_script s3-warm "$out/warm-home" "oci:$out/warm-out:latest" "$in/builder.toml" --pull-policy never

  # The same create with the base images in a loopback registry and an empty CNBX_HOME, as a
  # CI runner starts: the Debian layers are downloaded and validated as they arrive.
  local host
  reg_start "$out/reg" "$out/reg-storage"
  host=$(reg_host "$out/reg")
  local image
  for image in "$S3_BUILD_IMAGE" "$S3_RUN_IMAGE"; do
    skopeo copy --quiet --dest-tls-verify=false "oci:$in/home/store:$image" "docker://$host/${image#*/}" ||
      die "could not copy $image into scenario 3's registry"
  done
  sed -e "s|\"$S3_BUILD_IMAGE\"|\"$host/${S3_BUILD_IMAGE#*/}\"|" -e "s|\"$S3_RUN_IMAGE\"|\"$host/${S3_RUN_IMAGE#*/}\"|" \
    "$in/builder.toml" >"$out/builder-reg.toml"
  has s2 && ref2=s2-cold
  step s3-reg s3 "$RUNS" 1 "$ref2" "cnbx cold create, base image from a registry into an empty CNBX_HOME"
  prep_s3-reg() { fresh_home "$RUN_DIR/s3/reg-home"; rm -rf "$RUN_DIR/s3/reg-out"; }
  post_s3-reg() { rm -rf "$RUN_DIR/s3/reg-home"; }
  create_script s3-reg "$out/reg-home" "oci:$out/reg-out:latest" "$out/builder-reg.toml" --pull-policy if-not-present
}

# --- s4: buildpackages in a registry ----------------------------------------------------------

S4=$RUN_DIR/s4

# s4_order_toml FILE VARIANT: the s4 builder.toml with its [[order]] entries rotated by
# VARIANT (reversed every other pass), so that each variant is a different order.
s4_order_toml() {
  local file=$1 v=$2 n=$S4_PACKAGES rot rev i k
  rot=$((v % n)) rev=$(((v / n) % 2))
  {
    cat "$S4/builder-head.toml"
    for i in $(seq 0 $((n - 1))); do
      k=$(((i + rot) % n + 1))
      ((rev)) && k=$((n - k + 1))
      printf '[[order]]\n  [[order.group]]\n    id = "bench/pkg-%d"\n    version = "1.0.0"\n\n' "$k"
    done
  } >"$file"
}

# s4_traffic ROUND KEY REGDIR STORAGE: what the step sent to and fetched from the registry,
# from its access log since prep recorded the offset; and how many of the uploaded blobs are
# package layers.
s4_traffic() {
  local round=$1 key=$2 name value
  reg_traffic "$3" "$4" "$(cat "$S4/$key.offset")" "$S4/$key.traffic"
  while read -r name value; do extra "$round" "$key" "$name" "$value"; done <"$S4/$key.traffic"
  extra "$round" "$key" pkg_layers_uploaded "$(grep -c -x -F -f "$S4/pkg-digests" "$S4/$key.traffic.digests" || true)"
}

# s4_builder_check ROUND KEY MANIFEST: how many package layer blobs the builder holds as they
# are (same digest), and the bytes of its layers that were new to registry A (not a package
# or base layer).
s4_builder_check() {
  local round=$1 key=$2 manifest=$3
  layer_list "$manifest" >"$S4/$key.layers"
  extra "$round" "$key" pkg_layers_reused "$(cut -d' ' -f1 "$S4/$key.layers" | grep -c -x -F -f "$S4/pkg-digests" || true)"
  extra "$round" "$key" new_bytes "$(awk 'NR == FNR { known[$1]; next } !($1 in known) { s += $2 } END { print s + 0 }' \
    "$S4/known-digests" "$S4/$key.layers")"
}

# registry_manifest REF FILE: the linux/amd64 manifest of docker://REF into FILE.
registry_manifest() {
  skopeo inspect --raw --tls-verify=false "docker://$1" >"$2"
  if jq -e '.manifests' "$2" >/dev/null; then
    local d
    d=$(jq -r '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == "amd64")][0].digest' "$2")
    skopeo inspect --raw --tls-verify=false "docker://${1%:*}@$d" >"$2"
  fi
}

s4_steps() {
  local in=$INPUTS/s4 n host_a
  mkdir -p "$S4"
  S4_PACKAGES=$(cat "$in/packages")
  registry_copy "$in/registry" "$S4/reg-a-storage"
  reg_start "$S4/reg-a" "$S4/reg-a-storage"
  host_a=$(reg_host "$S4/reg-a")
  cut -d' ' -f1 "$in/layers" | sort -u >"$S4/pkg-digests"
  registry_manifest "$host_a/base/build:jammy" "$S4/base-manifest.json"
  { cat "$S4/pkg-digests"; layer_list "$S4/base-manifest.json" | cut -d' ' -f1; } | sort -u >"$S4/known-digests"
  {
    echo '# Generated by bench/run.sh'
    echo 'description = "cnbx benchmark builder (buildpackages)"'
    echo
    for n in $(seq 1 "$S4_PACKAGES"); do
      printf '[[buildpacks]]\n  uri = "docker://%s/bench/pkg-%d:1.0.0"\n\n' "$host_a" "$n"
    done
    printf '[build]\n  image = "%s/base/build:jammy"\n\n' "$host_a"
    printf '[[run.images]]\n  image = "%s/base/run:jammy"\n\n' "$host_a"
    printf '[lifecycle]\n  uri = "%s"\n\n' "$INPUTS/s2/lifecycle.tgz"
  } >"$S4/builder-head.toml"
  s4_order_toml "$S4/builder.toml" 0
  mkdir -p "$S4/warm-home"

  # (a) --publish to registry A, which holds the packages and base images.
  step s4a-cold s4 "$RUNS_SLOW" 1 "" "(a) --publish, same registry, cold (empty CNBX_HOME, new repository)"
  prep_s4a-cold() {
    fresh_home "$S4/cold-home"
    echo "$(reg_host "$S4/reg-a")/bench/cold-r$1:latest" >"$S4/s4a-cold.target"
    reg_log_size "$S4/reg-a" >"$S4/s4a-cold.offset"
  }
  post_s4a-cold() {
    s4_traffic "$1" s4a-cold "$S4/reg-a" "$S4/reg-a-storage"
    registry_manifest "$(cat "$S4/s4a-cold.target")" "$S4/s4a-cold.manifest"
    s4_builder_check "$1" s4a-cold "$S4/s4a-cold.manifest"
    rm -rf "$S4/cold-home"
  }
  create_script s4a-cold "$S4/cold-home" "\$(cat $S4/s4a-cold.target)" "$S4/builder.toml" --publish

  step s4a-warm s4 "$RUNS_SLOW" 1 "" "(a) --publish, same registry, warm (unchanged inputs)"
  echo "$host_a/bench/builder:latest" >"$S4/warm.target"
  prep_s4a-warm() { reg_log_size "$S4/reg-a" >"$S4/s4a-warm.offset"; }
  post_s4a-warm() { s4_traffic "$1" s4a-warm "$S4/reg-a" "$S4/reg-a-storage"; }
  create_script s4a-warm "$S4/warm-home" "\$(cat $S4/warm.target)" "$S4/builder.toml" --publish

  step s4a-order s4 "$RUNS_SLOW" 1 "" "(a) --publish, same registry, warm, only [[order]] changed"
  prep_s4a-order() {
    s4_order_toml "$S4/builder-order.toml" $(($1 + 1))
    reg_log_size "$S4/reg-a" >"$S4/s4a-order.offset"
  }
  post_s4a-order() { s4_traffic "$1" s4a-order "$S4/reg-a" "$S4/reg-a-storage"; }
  create_script s4a-order "$S4/warm-home" "\$(cat $S4/warm.target)" "$S4/builder-order.toml" --publish

  # (b) --publish to an empty registry B, and the floor: skopeo copy of the same blobs A -> B.
  s4b_fresh() {
    reg_stop "$S4/reg-b"
    rm -rf "$S4/reg-b-storage" "$S4/reg-b/registry.log"
    reg_start "$S4/reg-b" "$S4/reg-b-storage"
    echo "$(reg_host "$S4/reg-b")/bench/builder:latest" >"$S4/b.target"
    reg_log_size "$S4/reg-b" >"$S4/$1.offset"
  }
  s4b_done() {
    s4_traffic "$1" "$2" "$S4/reg-b" "$S4/reg-b-storage"
    reg_stop "$S4/reg-b"
    rm -rf "$S4/reg-b-storage"
  }
  step s4b s4 "$RUNS_SLOW" 1 s4b-skopeo "(b) --publish to a second registry (warm CNBX_HOME)"
  prep_s4b() { s4b_fresh s4b; }
  post_s4b() {
    registry_manifest "$(cat "$S4/b.target")" "$S4/s4b.manifest"
    s4_builder_check "$1" s4b "$S4/s4b.manifest"
    s4b_done "$1" s4b
  }
  create_script s4b "$S4/warm-home" "\$(cat $S4/b.target)" "$S4/builder.toml" --publish

  step s4b-cold s4 "$RUNS_SLOW" 1 s4b-skopeo "(b) --publish to a second registry, cold (empty CNBX_HOME)"
  prep_s4b-cold() { s4b_fresh s4b-cold; fresh_home "$S4/cold-b-home"; }
  post_s4b-cold() {
    registry_manifest "$(cat "$S4/b.target")" "$S4/s4b-cold.manifest"
    s4_builder_check "$1" s4b-cold "$S4/s4b-cold.manifest"
    s4b_done "$1" s4b-cold
    rm -rf "$S4/cold-b-home"
  }
  create_script s4b-cold "$S4/cold-b-home" "\$(cat $S4/b.target)" "$S4/builder.toml" --publish

  step s4b-skopeo s4 "$RUNS_SLOW" 1 "" "(b) floor: skopeo copy of the packages and build image A → B, xargs -P2"
  {
    for n in $(seq 1 "$S4_PACKAGES"); do echo "bench/pkg-$n:1.0.0"; done
    echo "base/build:jammy"
  } >"$S4/copy-list"
  prep_s4b-skopeo() { s4b_fresh s4b-skopeo; }
  post_s4b-skopeo() { s4b_done "$1" s4b-skopeo; }
  cat >"$S4/copy-one.sh" <<EOF
set -euo pipefail
b=\$(cat $S4/b.target)
exec skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false --override-os linux --override-arch amd64 \\
  "docker://$host_a/\$1" "docker://\${b%%/*}/\$1"
EOF
  printf 'exec xargs -P2 -n1 bash %q <%q\n' "$S4/copy-one.sh" "$S4/copy-list" >"$S/s4b-skopeo.sh"

  # (c) into the local store.
  step s4c-cold s4 "$RUNS_SLOW" 1 "" "(c) local store, cold (empty CNBX_HOME)"
  prep_s4c-cold() { fresh_home "$S4/cold-home"; reg_log_size "$S4/reg-a" >"$S4/s4c-cold.offset"; }
  post_s4c-cold() {
    s4_traffic "$1" s4c-cold "$S4/reg-a" "$S4/reg-a-storage"
    s4_builder_check "$1" s4c-cold "$(manifest_of "$S4/cold-home/store" bench.test/s4-builder:latest)"
    rm -rf "$S4/cold-home"
  }
  # The pull policy these figures were first measured with (pack's default, always, would add
  # one manifest request per image name to the warm create).
  create_script s4c-cold "$S4/cold-home" bench.test/s4-builder:latest "$S4/builder.toml" --pull-policy if-not-present

  step s4c-warm s4 "$RUNS_SLOW" 1 "" "(c) local store, warm"
  prep_s4c-warm() { reg_log_size "$S4/reg-a" >"$S4/s4c-warm.offset"; }
  post_s4c-warm() {
    s4_traffic "$1" s4c-warm "$S4/reg-a" "$S4/reg-a-storage"
    s4_builder_check "$1" s4c-warm "$(manifest_of "$S4/warm-home/store" bench.test/s4-builder:latest)"
  }
  create_script s4c-warm "$S4/warm-home" bench.test/s4-builder:latest "$S4/builder.toml" --pull-policy if-not-present
}

# --- big: one 1 GiB layer ---------------------------------------------------------------------

big_steps() {
  local out=$RUN_DIR/big
  mkdir -p "$out"
  step big-cold big 1 0 "" "cnbx cold create, one buildpack of 1 GiB (.tgz)"
  prep_big-cold() { fresh_home "$RUN_DIR/big/home" "$ROOT/testdata/cnbx-home"; rm -rf "$RUN_DIR/big/out"; }
  post_big-cold() {
    local m
    m=$(manifest_of "$RUN_DIR/big/out" latest)
    extra "$1" big-cold largest_layer "$(jq '[.layers[].size] | max' "$m")"
    rm -rf "$RUN_DIR/big/out" "$RUN_DIR/big/home"
  }
  big_builder_toml "$out/builder.toml"
  create_script big-cold "$out/home" "oci:$out/out:latest" "$out/builder.toml" --pull-policy never
}

# --- eng: into a container engine -------------------------------------------------------------

ENG=$RUN_DIR/eng
ENG_HOST=unix://$ENG/engine/docker.sock

# engine_start / engine_stop: a dockerd of the bench's own (vfs storage, no networking), with
# its directories under $ENG/engine, as the tests start one.
engine_start() {
  mkdir -p "$ENG/engine"
  setsid /usr/sbin/dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root="$ENG/engine/data" --exec-root="$ENG/engine/exec" --pidfile="$ENG/engine/docker.pid" \
    -H "$ENG_HOST" >"$ENG/engine/log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 300); do
    DOCKER_HOST=$ENG_HOST docker version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "the bench's dockerd did not start; its log: $ENG/engine/log"
}
engine_stop() {
  [[ -f $ENG/engine/docker.pid ]] || return 0
  local pid i
  pid=$(cat "$ENG/engine/docker.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$ENG/engine/docker.pid"
  awk -v d="$ENG/engine/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$ENG/engine"
}
# engine_empty: removes every image from the bench's engine.
engine_empty() {
  local ids
  ids=$(DOCKER_HOST=$ENG_HOST docker images -aq --no-trunc | sort -u)
  [[ -z $ids ]] || DOCKER_HOST=$ENG_HOST docker rmi -f $ids >/dev/null
}
# eng_create KEY HOME [ARGS...]: $S/KEY.sh creates s2's builder into the engine.
eng_create() {
  local key=$1 home=$2
  shift 2
  printf 'exec env DOCKER_HOST=%q CNBX_LOCAL=engine CNBX_HOME=%q %q builder create bench.test/eng:latest --config %q --target linux/amd64 --pull-policy never' \
    "$ENG_HOST" "$home" "$CNBX_BIN" "$INPUTS/s2/builder.toml" >"$S/$key.sh"
  (($# == 0)) || printf ' %q' "$@" >>"$S/$key.sh"
  echo >>"$S/$key.sh"
}

eng_steps() {
  mkdir -p "$ENG"
  engine_start
  fresh_home "$ENG/warm-home" "$ROOT/testdata/cnbx-home"
  # The same builder as a docker-archive and an OCI layout, for the floors.
  env CNBX_HOME="$ENG/warm-home" "$CNBX_BIN" builder create "docker-archive:$ENG/builder.tar:bench.test/eng:latest" \
    --config "$INPUTS/s2/builder.toml" --target linux/amd64 --pull-policy never >"$ENG/setup.log" 2>&1
  env CNBX_HOME="$ENG/warm-home" "$CNBX_BIN" builder create "oci:$ENG/oci:latest" \
    --config "$INPUTS/s2/builder.toml" --target linux/amd64 --pull-policy never >>"$ENG/setup.log" 2>&1
  # Untimed: the warm CNBX_HOME and an engine that holds the builder of the last create.
  eng_create eng-setup "$ENG/warm-home"

  step eng-cold eng "$RUNS" 1 eng-archive "(a) cnbx cold create into the engine (empty CNBX_HOME, empty engine)"
  prep_eng-cold() { fresh_home "$ENG/cold-home" "$ROOT/testdata/cnbx-home"; engine_empty; }
  post_eng-cold() { rm -rf "$ENG/cold-home"; }
  eng_create eng-cold "$ENG/cold-home"

  step eng-warm eng "$RUNS" 1 eng-load "(b) cnbx warm create into the engine (unchanged; it holds the builder)"
  prep_eng-warm() { engine_empty; bash "$S/eng-setup.sh"; }
  eng_create eng-warm "$ENG/warm-home"

  step eng-label eng "$RUNS" 1 eng-load "(c) cnbx warm create, one --label changed (it holds the previous builder)"
  prep_eng-label() { engine_empty; bash "$S/eng-setup.sh"; }
  eng_create eng-label "$ENG/warm-home" --label io.cnbx.bench.changed=1

  step eng-load eng "$RUNS" 1 "" "(d) docker load -i of the builder's docker-archive (empty engine)"
  prep_eng-load() { engine_empty; }
  printf 'exec env DOCKER_HOST=%q docker load -q -i %q\n' "$ENG_HOST" "$ENG/builder.tar" >"$S/eng-load.sh"

  step eng-archive eng "$RUNS" 1 "" "(e) cnbx cold create into a docker-archive + docker load -i (empty engine)"
  prep_eng-archive() { fresh_home "$ENG/archive-home" "$ROOT/testdata/cnbx-home"; rm -f "$ENG/cold.tar"; engine_empty; }
  post_eng-archive() { rm -rf "$ENG/archive-home" "$ENG/cold.tar"; }
  {
    echo 'set -euo pipefail'
    printf 'env CNBX_HOME=%q %q builder create %q --config %q --target linux/amd64 --pull-policy never\n' \
      "$ENG/archive-home" "$CNBX_BIN" "docker-archive:$ENG/cold.tar:bench.test/eng:latest" "$INPUTS/s2/builder.toml"
    printf 'env DOCKER_HOST=%q docker load -q -i %q\n' "$ENG_HOST" "$ENG/cold.tar"
  } >"$S/eng-archive.sh"

  step eng-skopeo eng "$RUNS" 1 eng-load "(f) skopeo copy oci:... docker-daemon:... of the builder (empty engine)"
  prep_eng-skopeo() { engine_empty; }
  printf 'exec skopeo copy --quiet --dest-daemon-host %q %q %q\n' "$ENG_HOST" "oci:$ENG/oci:latest" \
    docker-daemon:bench.test/eng:latest >"$S/eng-skopeo.sh"
}

has s1 && builder_steps s1
has s2 && builder_steps s2
has s3 && s3_steps
has s4 && s4_steps
has big && big_steps
has eng && eng_steps

# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

# All steps run in rounds: one unmeasured warm-up round (page cache; it also warms the warm
# homes), then measured rounds, each running every step once, in an order rotated every round;
# a step with fewer runs (s4, big) sits out the later rounds. So load from anything else on the
# machine hits all steps alike, and the ratios compare runs made at the same time. Wall time
# comes from date(1) around the step (its prep and post functions excluded), CPU time (user +
# system) and peak RSS from /usr/bin/time (for peak RSS: the largest process of the step).
declare -A STATUS
FAILED=0
for key in "${STEPS[@]}"; do STATUS[$key]=ok; done

# hook ROUND KEY prep|post: runs that function, if any, in a subshell with errexit on. Called
# with errexit off and never as a condition (where bash would ignore errexit inside it).
hook() {
  declare -F "$3_$2" >/dev/null || return 0
  (
    set -e
    "$3_$2" "$1"
  ) >>"$RUN_DIR/logs/$2.log" 2>&1
}

# run_step ROUND KEY: one run of a step; appends to times.csv (unless warm-up round 0).
run_step() {
  local round=$1 key=$2 t0 t1 rc phase u s m
  [[ ${STATUS[$key]} == ok ]] || return 0
  : >"$RUN_DIR/logs/$key.log"
  set +e
  hook "$round" "$key" prep
  rc=$? phase=prep_$key
  if ((rc == 0)); then
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %U %S %M' -o "$R/$key.time" bash "$S/$key.sh" >>"$RUN_DIR/logs/$key.log" 2>&1
    rc=$? phase=$S/$key.sh
    t1=$(date +%s%N)
  fi
  if ((rc == 0)); then
    hook "$round" "$key" post
    rc=$? phase=post_$key
  fi
  set -e
  if ((rc != 0)); then
    log "$key FAILED (round $round): $phase exited with status $rc; the end of its log ($RUN_DIR/logs/$key.log):"
    tail -40 "$RUN_DIR/logs/$key.log" | sed 's/^/    /' >&2
    STATUS[$key]=FAILED
    FAILED=1
    return 0
  fi
  read -r _ u s m < <(tail -1 "$R/$key.time")
  ((round == 0)) && return 0
  echo "$round,$key,$(awk -v n=$((t1 - t0)) 'BEGIN { printf "%.4f", n / 1e9 }'),$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }'),$m" \
    >>"$R/times.csv"
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date +%s)
max_round=$RUNS
((RUNS_SLOW > max_round)) && max_round=$RUNS_SLOW
for round in $(seq 0 "$max_round"); do
  order=()
  for i in "${!STEPS[@]}"; do
    key=${STEPS[$(((i + round) % ${#STEPS[@]}))]}
    ((round == 0 && WARMUP[$key] == 0)) && continue
    ((round > RUNS_OF[$key])) && continue
    order+=("$key")
  done
  log "round $round/$max_round$([[ $round == 0 ]] && echo ' (warm-up, not measured)'): ${order[*]}"
  for key in "${order[@]}"; do run_step "$round" "$key"; done
done
cleanup

# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

# shellcheck source=bench/report.sh
source "$ROOT/bench/report.sh"
report | tee "$R/table.md"
# The s4 homes and registry storage are the largest things left; only their results matter.
rm -rf "$S4/warm-home" "$S4/cold-home" "$S4/reg-a-storage" "$S4/reg-b-storage"

echo >&2
log "results: $R (table.md; times.csv and extra.csv: every measured run); step logs: $RUN_DIR/logs;" \
  "took $(($(date +%s) - STARTED)) s after the inputs"
if ((FAILED)); then
  log "some steps FAILED (see above)"
  exit 1
fi
