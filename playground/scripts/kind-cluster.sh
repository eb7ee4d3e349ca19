#!/usr/bin/env bash
# The playground's Kind cluster: checks, create (idempotent), delete, image loading.
#
# Called by the Makefile (k8s_fake_cluster, k8s_recreate_cluster, k8s_clean, playground-image)
# and by playground/*.py, which export the pinned names below. Every failure says exactly how
# to fix it. Usage:
#   kind-cluster.sh engine            print the container engine that answers (docker|podman)
#   kind-cluster.sh check             engine answers and kind is installed (version checked)
#   kind-cluster.sh create            create the cluster unless it exists; write its kubeconfig
#   kind-cluster.sh delete            delete the cluster and its kubeconfig
#   kind-cluster.sh load NAME IMAGE.. load local images into Kind cluster NAME
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
user_name="$(printf '%s' "${USER:-$(id -un)}" | tr '[:upper:]' '[:lower:]' | tr -c 'a-z0-9-' '-')"
KIND_VERSION="${KIND_VERSION:-v0.31.0}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.31.14@sha256:6f86cf509dbb42767b6e79debc3f2c32e4ee01386f0489b3b2be24b0a55aac2b}"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-${user_name}-k8s-test}"
KIND_CONFIG="${KIND_CONFIG:-$repo/k8s_itests/kind-cluster.yaml}"
KIND_KUBECONFIG="${KIND_KUBECONFIG:-$repo/k8s_itests/kubeconfig}"
KIND_WAIT="${KIND_WAIT:-180s}"

say() { printf '%s\n' "$*"; }
fail() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command with a deadline when `timeout` exists (coreutils; not on stock macOS).
with_deadline() {
  local seconds="$1"; shift
  if command -v timeout >/dev/null 2>&1; then timeout "$seconds" "$@"; else "$@"; fi
}

kind_install_hint() {
  local os arch
  os="$(uname -s | tr '[:upper:]' '[:lower:]')"
  arch="$(uname -m)"
  case "$arch" in x86_64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; esac
  cat >&2 <<HINT
Install kind $KIND_VERSION (the version the playground pins; its node image is built for it):
  curl -Lo ./kind https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-$os-$arch && chmod +x ./kind && sudo mv ./kind /usr/local/bin/kind
or, with Go installed:  go install sigs.k8s.io/kind@$KIND_VERSION   (puts it in \$(go env GOPATH)/bin)
then run the make target again.
HINT
}

engine_hint() {
  local docker_error="$1"
  {
    say "No container engine answers; Kind runs its nodes as containers and the playground builds its image with one."
    if command -v docker >/dev/null 2>&1; then
      say "The docker CLI is installed but the daemon does not answer:"
      say "  ${docker_error:-docker info failed}"
      [ -n "${DOCKER_HOST:-}" ] && say "  (DOCKER_HOST=$DOCKER_HOST: is that daemon running?)"
      say "Fix: start the daemon, e.g.  sudo systemctl start docker   (Linux)  or  open -a Docker   (macOS),"
      say "     and on Linux let your user talk to it:  sudo usermod -aG docker \"\$USER\"  then log in again."
    else
      say "Fix: install Docker (https://docs.docker.com/engine/install/) or Podman (https://podman.io/docs/installation)."
    fi
    say "Or set KUBECONFIG to a cluster you can use and run the target again (no Kind needed then)."
  } >&2
}

# Prints docker|podman; CONTAINER_ENGINE=podman (or docker) forces the choice.
detect_engine() {
  local docker_error="" candidate out
  for candidate in ${CONTAINER_ENGINE:-docker podman}; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    if out="$(with_deadline 20 "$candidate" info 2>&1 >/dev/null)"; then
      say "$candidate"; return 0
    fi
    [ "$candidate" = docker ] && docker_error="$(printf '%s' "$out" | grep -v '^$' | tail -n 1)"
  done
  engine_hint "$docker_error"
  return 1
}

check_kind() {
  if ! command -v kind >/dev/null 2>&1; then
    say "kind is not installed (or not on PATH)." >&2
    kind_install_hint
    return 1
  fi
  local found
  found="$(kind version 2>/dev/null | awk '{print $2}')"
  if [ "$found" != "$KIND_VERSION" ]; then
    say "WARNING: kind ${found:-?} found; the playground is tested with kind $KIND_VERSION and node image" >&2
    say "  $KIND_NODE_IMAGE (built for that release). If cluster creation fails:" >&2
    kind_install_hint
  fi
}

engine_env() {  # kind picks podman only when told
  if [ "$1" = podman ]; then export KIND_EXPERIMENTAL_PROVIDER=podman; fi
}

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx -- "$KIND_CLUSTER_NAME"
}

# Both checks, reporting every problem before failing; prints the engine on success.
require_tools() {
  local engine="" failed=0
  engine="$(detect_engine)" || failed=1
  check_kind || failed=1
  [ "$failed" = 0 ] || exit 1
  printf '%s' "$engine"
}

cmd_check() {
  local engine
  engine="$(require_tools)"
  say "ok: $engine answers; kind $(kind version | awk '{print $2}') is installed"
}

cmd_create() {
  local engine
  engine="$(require_tools)"
  engine_env "$engine"
  mkdir -p "$(dirname "$KIND_KUBECONFIG")"
  if cluster_exists; then
    say "Kind cluster $KIND_CLUSTER_NAME already exists; refreshing its kubeconfig ${KIND_KUBECONFIG#"$repo"/}"
    kind export kubeconfig --name "$KIND_CLUSTER_NAME" --kubeconfig "$KIND_KUBECONFIG"
    return 0
  fi
  say "Creating Kind cluster $KIND_CLUSTER_NAME (context kind-$KIND_CLUSTER_NAME) with $KIND_NODE_IMAGE"
  kind create cluster --name "$KIND_CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --config "$KIND_CONFIG" \
    --kubeconfig "$KIND_KUBECONFIG" --wait "$KIND_WAIT"
}

cmd_delete() {
  if ! command -v kind >/dev/null 2>&1; then
    say "kind is not installed: no Kind cluster to delete."
  else
    local engine
    if engine="$(detect_engine 2>/dev/null)"; then engine_env "$engine"; fi
    if cluster_exists; then
      kind delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KIND_KUBECONFIG"
    else
      say "Kind cluster $KIND_CLUSTER_NAME does not exist."
    fi
  fi
  rm -f "$KIND_KUBECONFIG"
}

cmd_load() {
  [ "$#" -ge 2 ] || fail "usage: kind-cluster.sh load KIND_CLUSTER IMAGE..."
  local name="$1" engine image archive
  shift
  engine="$(require_tools)"
  engine_env "$engine"
  for image in "$@"; do
    if [ "$engine" = docker ]; then
      kind load docker-image "$image" --name "$name"
    else  # `kind load docker-image` needs docker; an archive works with any engine
      archive="$(mktemp "${TMPDIR:-/tmp}/playground-image.XXXXXX")"
      podman save -o "$archive" "$image" && kind load image-archive "$archive" --name "$name"
      rm -f "$archive"
    fi
  done
}

case "${1:-}" in
  engine) detect_engine ;;
  check) cmd_check ;;
  create) cmd_create ;;
  delete) cmd_delete ;;
  load) shift; cmd_load "$@" ;;
  *) fail "usage: kind-cluster.sh engine|check|create|delete|load NAME IMAGE..." ;;
esac
