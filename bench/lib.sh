# Helpers shared by bench/run.sh and bench/inputs.sh (sourced, not run).
#
# Needs: bash >= 4.4, GNU coreutils, tar, gzip, jq, curl, docker-registry, skopeo.

# shellcheck disable=SC2034 # used by the scripts that source this file
MIB=1048576
# pack's timestamp for every layer entry: 1980-01-01T00:00:01Z.
# shellcheck disable=SC2034
PACK_EPOCH=315532801

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# A deterministic, endless byte stream for shuf, so the same machine always picks the same files.
seeded() { yes "cnbx-bench-seed-$1"; }

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes() { du -sb "$1" | cut -f1; }
file_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# need_space DIR MIB WHAT: stops unless the file system of DIR has MIB MiB free (plus 1 GiB).
need_space() {
  local avail
  mkdir -p "$1"
  avail=$(df --output=avail -B1M "$1" | tail -1 | tr -d ' ')
  ((avail >= $2 + 1024)) || die "$3 needs about $2 MiB in $1, only $avail MiB are free (keep 1 GiB spare)"
}

# Regular files under /usr/lib and /usr/share of at most MAX (find's -size syntax, e.g. 4M),
# names relative to /usr without whitespace or backslashes, shuffled with seed SEED, as
# "size<TAB>name" lines. Files that are not world-readable are left out (they would need root
# to read back).
usr_files() {
  local max=$1 seed=$2
  { find /usr/lib /usr/share -xdev -type f -perm -o+r -size "-$max" -printf '%s\t%p\n' 2>/dev/null || true; } \
    | awk -F'\t' '$2 !~ /[ \t\\]/ && $1 > 0 { print $1 "\t" substr($2, 6) }' \
    | sort -t$'\t' -k2,2 \
    | shuf --random-source=<(seeded "$seed")
}

# with_parents: reads names (relative, one a line) and prints them together with every parent
# directory they need, sorted in byte order (parents before children).
with_parents() {
  awk '{ print; n = split($0, p, "/"); d = p[1]; for (i = 2; i < n; i++) { if (!(d in seen)) { seen[d]; print d } d = d "/" p[i] } if (n > 1 && !(d in seen)) { seen[d]; print d } }' \
    | sort -u
}

# A buildpack's small files in directory DIR: buildpack.toml for ID/VERSION (with ORDER_IDS, a
# space-separated list of ids at version 1.0.0, it is a composite with one order group holding
# them, and no bin/), else bin/detect and bin/build (which copy payload/ into a layer).
write_buildpack_files() {
  local dir=$1 id=$2 version=$3 order_ids=${4:-} dep
  mkdir -p "$dir"
  {
    printf 'api = "0.10"\n\n[buildpack]\n  id = "%s"\n  version = "%s"\n  name = "Bench %s"\n' "$id" "$version" "$id"
    if [[ -n $order_ids ]]; then
      printf '\n[[order]]\n'
      for dep in $order_ids; do
        printf '  [[order.group]]\n    id = "%s"\n    version = "1.0.0"\n' "$dep"
      done
    else
      printf '\n[[targets]]\n  os = "linux"\n  arch = "amd64"\n'
    fi
  } >"$dir/buildpack.toml"
  [[ -n $order_ids ]] && return 0
  mkdir -p "$dir/bin"
  printf '#!/usr/bin/env bash\nset -euo pipefail\nexit 0\n' >"$dir/bin/detect"
  cat >"$dir/bin/build" <<EOF
#!/usr/bin/env bash
set -euo pipefail
layers_dir=\$1
echo "---> $id"
cp -R "\$CNB_BUILDPACK_DIR/payload" "\$layers_dir/payload"
EOF
  chmod 0755 "$dir/bin/detect" "$dir/bin/build"
}

# --------------------------------------------------------------------------------------------
# OCI image layouts written by hand (base images for scenario 3, buildpackages for scenario 4)
# --------------------------------------------------------------------------------------------

# gz_layer OUT: gzip -6 -n of stdin (a tar) into OUT, its diffID into OUT.diffid.
gz_layer() {
  gzip -6 -n >"$1"
  printf 'sha256:%s\n' "$(gzip -dc "$1" | sha256sum | cut -d' ' -f1)" >"$1.diffid"
}

# oci_put LAYOUT FILE: stores FILE as a blob of LAYOUT (hard link when possible); prints
# "sha256:<hex> <size>".
oci_put() {
  local hex size
  hex=$(sha256sum "$2" | cut -d' ' -f1)
  size=$(stat -c %s "$2")
  mkdir -p "$1/blobs/sha256"
  [[ -e $1/blobs/sha256/$hex ]] || ln "$2" "$1/blobs/sha256/$hex" 2>/dev/null || cp "$2" "$1/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}

# oci_image LAYOUT REF CONFIG LAYER...: adds a linux/amd64 image to the OCI layout LAYOUT,
# tagged REF (org.opencontainers.image.ref.name, replacing an entry of that name). CONFIG is
# a JSON file with the image config without rootfs (added here); each LAYER is a gzip blob
# with its diffID in LAYER.diffid.
oci_image() {
  local layout=$1 ref=$2 config=$3
  shift 3
  local tmp layers='[]' diff_ids='[]' layer d s
  tmp=$(mktemp -d)
  for layer in "$@"; do
    read -r d s < <(oci_put "$layout" "$layer")
    layers=$(jq -c --arg d "$d" --argjson s "$s" '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers")
    diff_ids=$(jq -c --arg d "$(cat "$layer.diffid")" '. + [$d]' <<<"$diff_ids")
  done
  jq -cS --argjson ids "$diff_ids" '. + {rootfs: {type: "layers", diff_ids: $ids}}' "$config" >"$tmp/config"
  read -r d s < <(oci_put "$layout" "$tmp/config")
  jq -cn --arg d "$d" --argjson s "$s" --argjson layers "$layers" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
      layers: $layers}' >"$tmp/manifest"
  read -r d s < <(oci_put "$layout" "$tmp/manifest")
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  [[ -f $layout/index.json ]] || echo '{"schemaVersion":2,"manifests":[]}' >"$layout/index.json"
  jq -c --arg ref "$ref" --arg d "$d" --argjson s "$s" \
    '.manifests |= (map(select(.annotations["org.opencontainers.image.ref.name"] != $ref))
      + [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
          platform: {architecture: "amd64", os: "linux"},
          annotations: {"org.opencontainers.image.ref.name": $ref}}])' \
    "$layout/index.json" >"$tmp/index"
  mv "$tmp/index" "$layout/index.json"
  rm -rf "$tmp"
}

# manifest_of LAYOUT REF: the path of the linux/amd64 manifest blob tagged REF in LAYOUT
# (following an image index).
manifest_of() {
  local layout=$1 ref=$2 d doc
  d=$(jq -r --arg r "$ref" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $r) | .digest' \
    "$layout/index.json" | head -1)
  [[ -n $d ]] || return 1
  doc=$layout/blobs/sha256/${d#sha256:}
  if jq -e '.manifests' "$doc" >/dev/null; then
    d=$(jq -r '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == "amd64")][0].digest' "$doc")
    doc=$layout/blobs/sha256/${d#sha256:}
  fi
  echo "$doc"
}

# layer_list MANIFEST: "digest size" of each layer, in order.
layer_list() { jq -r '.layers[] | "\(.digest) \(.size)"' "$1"; }

# --------------------------------------------------------------------------------------------
# Loopback registries (Debian's docker-registry)
# --------------------------------------------------------------------------------------------

# reg_start DIR STORAGE: starts docker-registry on a free 127.0.0.1 port, storing in STORAGE,
# with its config and log (log level info, access log on) in DIR; DIR/pid and DIR/port name it.
reg_start() {
  local dir=$1 storage=$2 port pid try
  mkdir -p "$dir" "$storage"
  for _ in 1 2 3 4 5; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 &
    pid=$!
    local i
    for i in $(seq 1 150); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/") == 200 ]]; then
        echo "$pid" >"$dir/pid"
        echo "$port" >"$dir/port"
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  die "docker-registry did not start (log: $dir/registry.log)"
}

# reg_stop DIR: stops the registry reg_start started in DIR (by its pid), if it runs, and
# waits until it has exited (it may have been started by another subshell: no `wait`).
reg_stop() {
  local pid
  [[ -f $1/pid ]] || return 0
  pid=$(cat "$1/pid")
  rm -f "$1/pid"
  kill "$pid" 2>/dev/null || return 0
  wait "$pid" 2>/dev/null || true # reaps it when this shell started it; else returns at once
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "docker-registry (pid $pid) did not stop"
}

reg_host() { echo "127.0.0.1:$(cat "$1/port")"; }

# reg_log_size DIR: the current size of the registry's log, to read what a step adds to it.
reg_log_size() { stat -c %s "$1/registry.log"; }

# reg_traffic DIR STORAGE OFFSET OUT: what clients sent and fetched since OFFSET in the
# registry's access log (Apache combined format: method, URI, status, response bytes).
#   uploaded: the blobs whose upload completed (PUT .../blobs/uploads/<id>?...digest=D, or a
#     monolithic POST .../blobs/uploads/?digest=D, answered 201; cross-repository mounts
#     (POST ...?mount=D&from=R) are counted apart), each counted with the size of D in the
#     registry's storage, plus every manifest PUT (201) with the size of the manifest stored;
#   downloaded: the response bytes of successful GETs of blobs and manifests.
# Writes "up_bytes", "down_bytes", "blobs_up", "mounts", "manifests_up" lines ("KEY VALUE")
# to OUT and the uploaded blob digests to OUT.digests.
reg_traffic() {
  local dir=$1 storage=$2 offset=$3 out=$4 v2 up=0 down=0 nblobs=0 nmounts=0 nmanifests=0 kind a b f
  v2=$storage/docker/registry/v2
  sleep 0.3 # the access log line of the last request is written after its response
  : >"$out.digests"
  while read -r kind a b; do
    case $kind in
      blob)
        f=$v2/blobs/sha256/${a:0:2}/$a/data
        [[ -f $f ]] && up=$((up + $(stat -c %s "$f")))
        echo "sha256:$a" >>"$out.digests"
        nblobs=$((nblobs + 1))
        ;;
      mount) nmounts=$((nmounts + 1)) ;;
      manifest)
        if [[ $b == sha256:* ]]; then
          f=${b#sha256:}
        else
          f=$(cat "$v2/repositories/$a/_manifests/tags/$b/current/link" 2>/dev/null || true)
          f=${f#sha256:}
        fi
        [[ -n $f && -f $v2/blobs/sha256/${f:0:2}/$f/data ]] && up=$((up + $(stat -c %s "$v2/blobs/sha256/${f:0:2}/$f/data")))
        nmanifests=$((nmanifests + 1))
        ;;
      down) down=$((down + a)) ;;
    esac
  done < <(tail -c "+$((offset + 1))" "$dir/registry.log" | awk '
    # 127.0.0.1 - - [date] "METHOD URI HTTP/1.1" STATUS SIZE "referer" "agent"
    /^[0-9.]+ - [^ ]+ \[[^]]*\] "[A-Z]+ / {
      q1 = index($0, "\""); rest = substr($0, q1 + 1); q2 = index(rest, "\"")
      split(substr(rest, 1, q2 - 1), req, " "); split(substr(rest, q2 + 2), tail, " ")
      method = req[1]; uri = req[2]; status = tail[1]; size = tail[2]
      if (method == "GET" && status == 200 && uri ~ /^\/v2\/.+\/(blobs|manifests)\//) { print "down", size + 0; next }
      if (status != 201) next
      if (method == "POST" && uri ~ /\/blobs\/uploads\/\?/ && uri ~ /[?&]mount=/) { print "mount"; next }
      if ((method == "PUT" || method == "POST") && uri ~ /\/blobs\/uploads\// && match(uri, /digest=sha256(%3A|%3a|:)[0-9a-f]+/)) {
        d = substr(uri, RSTART, RLENGTH); sub(/^digest=sha256(%3A|%3a|:)/, "", d); print "blob", d; next
      }
      if (method == "PUT" && match(uri, /^\/v2\/.+\/manifests\//)) {
        name = substr(uri, 5, RLENGTH - 4 - 11); ref = substr(uri, RLENGTH + 1); sub(/%3A|%3a/, ":", ref)
        print "manifest", name, ref
      }
    }')
  printf 'up_bytes %s\ndown_bytes %s\nblobs_up %s\nmounts %s\nmanifests_up %s\n' \
    "$up" "$down" "$nblobs" "$nmounts" "$nmanifests" >"$out"
}

# registry_copy PRISTINE DEST: a registry storage tree to run on, made from the cached one
# without copying blob data: blob files are hard links (the registry only ever adds blobs by
# renaming new files into place, so the cached ones are never written), everything else
# (repository links, tags, which the registry rewrites in place) is copied.
registry_copy() {
  rm -rf "$2"
  mkdir -p "$2/docker/registry/v2"
  cp -al "$1/docker/registry/v2/blobs" "$2/docker/registry/v2/blobs"
  cp -a "$1/docker/registry/v2/repositories" "$2/docker/registry/v2/repositories"
}
