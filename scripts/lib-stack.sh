# Versions and Go builds of the local stack's binaries (etcd, kube-apiserver, kwok, helm).
# Sourced after lib.sh by scripts/setup and scripts/stack, not run.
#
# No container images here: each binary is built from its Go module through a wrapper module
# under tools/<name>/ (go.mod + go.sum committed, so builds are reproducible), then cached by
# version under $WASM_DEPLOYER_CACHE/<name>-<version>/ and linked into $CACHE_BIN. A cached
# binary is never rebuilt, so a second run costs a file check.

# Kubernetes 1.35 matches k8s-openapi's v1_35 feature used by the deployer.
KUBE_VERSION=v1.35.4
# The etcd release k8s.io/kubernetes v1.35.4 pins in its go.mod.
ETCD_VERSION=v3.6.5
# v0.8.0 is the newest kwok whose go directive (1.26.0) the preinstalled Go accepts.
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
# cosign is only the reference client the signing tests check our signatures against.
COSIGN_VERSION=v2.6.5

# go_build_cached NAME VERSION TOOLDIR PACKAGE [EXTRA_LDFLAGS]
# Builds PACKAGE inside tools/TOOLDIR (its wrapper module) unless the versioned binary exists.
go_build_cached() {
  local name="$1" version="$2" tooldir="$3" pkg="$4" ldx="${5:-}"
  local dir="$WASM_DEPLOYER_CACHE/$name-$version"
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || die "$name $version is built from its Go module: install Go 1.26+ first"
    say "building $name $version from its Go module (cold build: minutes on 2 cores; cached after)"
    mkdir -p "$dir"
    local start=$SECONDS
    # -trimpath and -s -w keep the binaries small and the build cache reusable across checkouts.
    (cd "$REPO_ROOT/tools/$tooldir" && go build -trimpath -buildvcs=false -ldflags "-s -w $ldx" -o "$dir/$name.tmp" "$pkg") >&2 \
      || die "building $name $version failed (see the go output above)"
    mv "$dir/$name.tmp" "$dir/$name"
    say "built $name $version in $((SECONDS - start))s"
  fi
  link_bin "$dir/$name" "$name"
}

build_etcd() {
  go_build_cached etcd "$ETCD_VERSION" etcd go.etcd.io/etcd/server/v3
}

kube_ldflags() {
  # Module zips carry a placeholder version; stamp the real one so `kubectl version` and
  # discovery report v1.35.x.
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local v=k8s.io/component-base/version
  printf '%s' "-X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
}

# The control plane: the API server, plus the controller-manager (Deployments, namespace
# deletion, garbage collection, default ServiceAccounts) and the scheduler (pods onto the kwok
# node). One wrapper module; the two extra builds reuse most of the apiserver's build cache.
build_kube() {
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    go_build_cached "$c" "$KUBE_VERSION" kubernetes "k8s.io/kubernetes/cmd/$c" "$(kube_ldflags)"
  done
}

build_kwok() {
  go_build_cached kwok "$KWOK_VERSION" kwok sigs.k8s.io/kwok/cmd/kwok \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  # The kwok binary has no built-in behaviour: its "fast" stages (node becomes Ready with a
  # lease heartbeat, pods become Running, deletion completes) and its CRDs (Logs, ClusterLogs)
  # ship in the module as YAML. Keep the release's own files next to the binary.
  local share="$WASM_DEPLOYER_CACHE/kwok-$KWOK_VERSION"
  if [ ! -f "$share/stages.yaml" ] || [ ! -f "$share/crds/kwok.x-k8s.io_portforwards.yaml" ]; then
    local src
    src="$(cd "$REPO_ROOT/tools/kwok" && go mod download -json sigs.k8s.io/kwok | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -d "$src/kustomize" ] || die "kwok $KWOK_VERSION module source not found (go mod download failed)"
    local st="$src/kustomize/stage" f
    rm -rf "$share/crds"; mkdir -p "$share/crds"
    cp "$src/kustomize/crd/bases/kwok.x-k8s.io_logs.yaml" "$src/kustomize/crd/bases/kwok.x-k8s.io_clusterlogs.yaml" \
      "$src/kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml" "$share/crds/"
    for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
      pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
      printf -- '---\n'; cat "$st/$f.yaml"
    done >"$share/stages.yaml.tmp"
    mv "$share/stages.yaml.tmp" "$share/stages.yaml"
  fi
}

build_helm() {
  # helm's own release build stamps its version and the Kubernetes version it assumes
  # offline (`helm template`, `helm lint`); the latter follows its client-go (v0.37).
  local m=helm.sh/helm/v3
  go_build_cached helm "$HELM_VERSION" helm $m/cmd/helm \
    "-X $m/internal/version.version=$HELM_VERSION -X $m/internal/version.gitTreeState=clean -X $m/pkg/chartutil.k8sVersionMajor=1 -X $m/pkg/chartutil.k8sVersionMinor=37 -X $m/pkg/lint/rules.k8sVersionMajor=1 -X $m/pkg/lint/rules.k8sVersionMinor=37"
}

# Istio's control plane (pilot-discovery = istiod) and sidecar agent (pilot-agent), from the
# istio.io/istio module at the pseudo-version the Go module proxy serves (the 1.31 cycle; its
# go.mod has no replace directives). The cache key is the module version.
ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad
ISTIO_VERSION="1.31-dev+${ISTIO_MODULE_VERSION##*-}"

istio_ldflags() {
  local v=istio.io/istio/pkg/version
  printf '%s' "-X $v.buildVersion=$ISTIO_VERSION -X $v.buildGitRevision=${ISTIO_MODULE_VERSION##*-} -X $v.buildStatus=Clean -X $v.buildTag=$ISTIO_VERSION -X $v.buildHub=local -X $v.buildOS=linux -X $v.buildArch=amd64"
}

build_istio() {
  local c
  for c in pilot-discovery pilot-agent; do
    go_build_cached "$c" "$ISTIO_MODULE_VERSION" istio "istio.io/istio/pilot/cmd/$c" "$(istio_ldflags)"
  done
  istio_files
}

# What the Istio release ships besides binaries, kept next to them: its CRDs (WasmPlugin,
# TrafficExtension, Sidecar, ...: installed by `scripts/stack up`) and the Envoy bootstrap
# template the agent renders (the proxy image's /var/lib/istio/envoy/envoy_bootstrap_tmpl.json).
istio_share() { printf '%s' "$WASM_DEPLOYER_CACHE/istio-$ISTIO_MODULE_VERSION"; }

istio_files() {
  local share; share="$(istio_share)"
  [ -f "$share/crd-all.gen.yaml" ] && [ -f "$share/envoy_bootstrap.json" ] && return 0
  local src
  src="$(cd "$REPO_ROOT/tools/istio" && go mod download -json istio.io/istio | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -f "$src/manifests/charts/base/files/crd-all.gen.yaml" ] || die "istio.io/istio $ISTIO_MODULE_VERSION source not found (go mod download failed)"
  mkdir -p "$share"
  install -m 0644 "$src/manifests/charts/base/files/crd-all.gen.yaml" "$share/crd-all.gen.yaml"
  install -m 0644 "$src/tools/packaging/common/envoy_bootstrap.json" "$share/envoy_bootstrap.json"
}

build_cosign() {
  # cosign's release build stamps its version through sigs.k8s.io/release-utils; without it
  # `cosign version` says "devel", which is harmless but confusing in test logs.
  go_build_cached cosign "$COSIGN_VERSION" cosign github.com/sigstore/cosign/v2/cmd/cosign \
    "-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION"
}
