#!/usr/bin/env bash
# Builds the real programs the tests drive (helm, promtool, prometheus,
# nats-server) from the Go module proxy only, into
#   <repo root>/.cache/tools/<tool>/<version>/<binary>
# where <version> is the one pinned in tools/realtools/<tool>/go.mod (that
# go.mod and its go.sum are the only place the versions live), and copies
# the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs from its
# module into <repo root>/.cache/tools/prometheus-operator/<version>/crds/.
#
# Usage: build.sh [helm|prometheus|nats-server|prometheus-operator ...]   (no argument: all)
#
# Idempotent: a binary already present for its pinned version is skipped.
# Every tool has its own module (tools/realtools/<tool>/go.mod, a `tool`
# line), so each is built with exactly the dependency versions its own
# release selects, and none of them enters the daemon's go.mod.
#
# Environment:
#   TOOLS_CACHE_DIR   output folder (default <repo root>/.cache/tools)
#   FORCE=1           rebuild even when present
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TOOLS_DIR/../.." && pwd)"
OUT="${TOOLS_CACHE_DIR:-$REPO_ROOT/.cache/tools}"
mkdir -p "$OUT"

command -v go >/dev/null || { echo "build.sh: go is not on PATH" >&2; exit 1; }
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false

ALL=(helm prometheus nats-server prometheus-operator)
want=("$@")
((${#want[@]})) || want=("${ALL[@]}")
for t in "${want[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "build.sh: unknown tool $t (known: ${ALL[*]})" >&2; exit 2; }
done

# Serialize concurrent runs (several test packages with REQUIRE_TOOLS=1,
# or make tools while a test builds).
if command -v flock >/dev/null; then
  exec 9>"$OUT/.build.lock"
  if ! flock -n 9; then
    echo "build.sh: another build is running in $OUT, waiting for it..."
    flock 9
  fi
fi

# modver TOOL MODULE: the version of MODULE that TOOL's go.mod pins.
modver() { (cd "$TOOLS_DIR/$1" && go list -m -f '{{.Version}}' "$2"); }

built=()
total_start=$SECONDS

# build TOOL VERSION BINARY PACKAGE LDFLAGS: builds PACKAGE in TOOL's module
# into $OUT/TOOL/VERSION/BINARY, through a temporary name so a concurrent
# reader never sees half a binary, and prints how long it took.
build() {
  local tool=$1 version=$2 binary=$3 pkg=$4 flags=$5
  local dir="$OUT/$tool/$version"
  if [[ "${FORCE:-}" != 1 && -x "$dir/$binary" ]]; then
    echo "==> $binary $version already present, skipping"
    return
  fi
  mkdir -p "$dir"
  local start=$SECONDS
  echo "==> building $binary $version ..."
  (cd "$TOOLS_DIR/$tool" && go build -trimpath -ldflags "$flags" -o "$dir/.$binary.tmp" "$pkg")
  mv -f "$dir/.$binary.tmp" "$dir/$binary"
  local took=$((SECONDS - start))
  echo "==> built $binary $version in ${took}s ($(du -h "$dir/$binary" | cut -f1))"
  built+=("$binary:${took}s")
}

build_helm() {
  local v k8s major minor
  v="$(modver helm helm.sh/helm/v3)"
  # As helm's Makefile: its version, and the Kubernetes version that
  # `helm template` and `helm lint` assume, from the client-go it uses.
  k8s="$(modver helm k8s.io/client-go)"; k8s="${k8s#v}"
  major=$((${k8s%%.*} + 1)); minor="${k8s#*.}"; minor="${minor%%.*}"
  local flags="-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
  done
  build helm "$v" helm helm.sh/helm/v3/cmd/helm "$flags"
}

build_prometheus() {
  local v release
  v="$(modver prometheus github.com/prometheus/prometheus)"
  # Module v0.X.Y is Prometheus release 3.X.Y; no builtinassets tag: the
  # tests use the HTTP API, not the web UI.
  release="$(cd "$TOOLS_DIR/prometheus" && go mod download github.com/prometheus/prometheus &&
    cat "$(go list -m -f '{{.Dir}}' github.com/prometheus/prometheus)/VERSION")"
  local flags="-s -w -X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=HEAD"
  build prometheus "$v" promtool github.com/prometheus/prometheus/cmd/promtool "$flags"
  build prometheus "$v" prometheus github.com/prometheus/prometheus/cmd/prometheus "$flags"
}

build_nats_server() {
  local v
  v="$(modver nats-server github.com/nats-io/nats-server/v2)"
  build nats-server "$v" nats-server github.com/nats-io/nats-server/v2 "-s -w"
}

# The CRDs the chart's ServiceMonitor and PrometheusRule are checked
# against; nothing is compiled.
OPERATOR_CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
build_prometheus_operator() {
  local v src dir
  v="$(modver prometheus-operator github.com/prometheus-operator/prometheus-operator)"
  dir="$OUT/prometheus-operator/$v/crds"
  if [[ "${FORCE:-}" != 1 && -d "$dir" ]]; then
    echo "==> prometheus-operator $v CRDs already present, skipping"
    return
  fi
  src="$(cd "$TOOLS_DIR/prometheus-operator" && go mod download github.com/prometheus-operator/prometheus-operator &&
    go list -m -f '{{.Dir}}' github.com/prometheus-operator/prometheus-operator)/example/prometheus-operator-crd"
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  for f in "${OPERATOR_CRDS[@]}"; do
    install -m 0644 "$src/$f" "$dir.tmp/$f"
  done
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "==> copied ${#OPERATOR_CRDS[@]} prometheus-operator $v CRDs into $dir"
  built+=("prometheus-operator-crds")
}

for t in "${want[@]}"; do
  "build_${t//-/_}"
done

if ((${#built[@]})); then
  echo "==> done in $((SECONDS - total_start))s: ${built[*]}"
else
  echo "==> nothing to build"
fi
