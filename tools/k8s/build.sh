#!/usr/bin/env bash
# Builds the binaries of the test Kubernetes control plane from Go modules
# only (no downloads besides the Go module proxy) into
#   <repo root>/.cache/k8s/<K8S_VERSION>/bin/
# and copies the kwok stage files into
#   <repo root>/.cache/k8s/<K8S_VERSION>/kwok-stages/
#
# Idempotent: binaries and stage files that are already present are skipped.
# Never touches the repository's root go.mod: kube-apiserver, kube-scheduler
# and etcd are built from the separate module in tools/k8s, kwok with
# `go install pkg@version` outside any module.
#
# Environment:
#   K8S_CACHE_DIR             output folder (default <repo root>/.cache/k8s/v1.36.3)
#   WITH_CONTROLLER_MANAGER=1 also build kube-controller-manager (not needed for bare Pods)
#   FORCE=1                   rebuild everything
set -euo pipefail

K8S_VERSION=v1.36.3
KWOK_VERSION=v0.8.0
# Stage files that kwok needs: nodes become Ready, pods go Running, complete, delete.
KWOK_STAGES=(
  kustomize/stage/node/fast/node-initialize.yaml
  kustomize/stage/node/heartbeat/node-heartbeat.yaml
  kustomize/stage/pod/fast/pod-ready.yaml
  kustomize/stage/pod/fast/pod-complete.yaml
  kustomize/stage/pod/fast/pod-delete.yaml
)

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TOOLS_DIR/../.." && pwd)"
OUT="${K8S_CACHE_DIR:-$REPO_ROOT/.cache/k8s/$K8S_VERSION}"
BIN="$OUT/bin"
STAGES="$OUT/kwok-stages"
mkdir -p "$BIN" "$STAGES"

command -v go >/dev/null || { echo "build.sh: go is not on PATH" >&2; exit 1; }

# Serialize concurrent runs (e.g. several test packages with REQUIRE_K8S=1).
if command -v flock >/dev/null; then
  exec 9>"$OUT/.build.lock"
  if ! flock -n 9; then
    echo "build.sh: another build is running in $OUT, waiting for it..."
    flock 9
  fi
fi

export GOWORK=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# Version information as the Kubernetes release build sets it, so that
# /version reports v1.36.3 instead of v0.0.0-master.
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

built=()
total_start=$SECONDS

# run_timed NAME CMD...: runs CMD, printing how long it took.
run_timed() {
  local name=$1; shift
  local start=$SECONDS
  echo "==> building $name ..."
  "$@"
  local took=$((SECONDS - start))
  echo "==> built $name in ${took}s ($(du -h "$BIN/$name" | cut -f1))"
  built+=("$name:${took}s")
}

need() { [[ "${FORCE:-}" == 1 || ! -x "$BIN/$1" ]]; }

# Builds into a temporary name and renames, so a concurrent reader never sees
# a half-written binary.
build_tools_module() { # NAME PACKAGE [LDFLAGS]
  local name=$1 pkg=$2 flags=${3:-"-s -w"}
  (cd "$TOOLS_DIR" && go build -trimpath -ldflags "$flags" -o "$BIN/.$name.tmp" "$pkg")
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
}

# A scratch folder outside the repository, so that `go install pkg@version`
# and `go mod download` run outside any module (no go.mod is read or written).
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/hodei-k8s-build.XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT

build_kwok() {
  # kwok's dependencies must not meet k8s.io/kubernetes' in one module graph.
  (cd "$SCRATCH" && GOBIN="$SCRATCH" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  mv -f "$SCRATCH/kwok" "$BIN/kwok"
}

for name in kube-apiserver kube-scheduler; do
  if need "$name"; then
    run_timed "$name" build_tools_module "$name" "k8s.io/kubernetes/cmd/$name" "$ldflags"
  else
    echo "==> $name already present, skipping"
  fi
done
if [[ "${WITH_CONTROLLER_MANAGER:-}" == 1 ]]; then
  if need kube-controller-manager; then
    run_timed kube-controller-manager build_tools_module kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-controller-manager "$ldflags"
  else
    echo "==> kube-controller-manager already present, skipping"
  fi
fi
if need etcd; then
  run_timed etcd build_tools_module etcd ./etcd
else
  echo "==> etcd already present, skipping"
fi
if need kwok; then
  run_timed kwok build_kwok
else
  echo "==> kwok already present, skipping"
fi

# kwok's stage files ship in its module; copy the ones the harness passes.
missing_stage=0
for s in "${KWOK_STAGES[@]}"; do
  [[ -f "$STAGES/$(basename "$s")" ]] || missing_stage=1
done
if [[ $missing_stage == 1 || "${FORCE:-}" == 1 ]]; then
  kwok_dir="$(cd "$SCRATCH" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$kwok_dir" && -d "$kwok_dir" ]] || { echo "build.sh: cannot locate sigs.k8s.io/kwok@$KWOK_VERSION in the module cache" >&2; exit 1; }
  for s in "${KWOK_STAGES[@]}"; do
    install -m 0644 "$kwok_dir/$s" "$STAGES/$(basename "$s")"
  done
  echo "==> copied ${#KWOK_STAGES[@]} kwok stage files into $STAGES"
else
  echo "==> kwok stage files already present, skipping"
fi

echo "$K8S_VERSION" >"$OUT/VERSION"
if ((${#built[@]})); then
  echo "==> done in $((SECONDS - total_start))s: ${built[*]}"
else
  echo "==> nothing to build"
fi
echo "==> binaries in $BIN ($(du -sh "$OUT" | cut -f1) total)"
