# Shared paths and helpers for the project's scripts. Sourced, not run.
# Everything fetched or built is cached by version outside the checkout, so a clean clone
# (CI) reuses it and a second run costs seconds.
WASM_DEPLOYER_CACHE="${WASM_DEPLOYER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasm-deployer}"
export WASM_DEPLOYER_CACHE
CACHE_BIN="$WASM_DEPLOYER_CACHE/bin"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ENVOY_VERSION=1.40.0
FUNC_E_VERSION=v1.6.0

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Links a versioned binary into $CACHE_BIN under a stable name.
link_bin() { mkdir -p "$CACHE_BIN"; ln -sfn "$1" "$CACHE_BIN/$2"; }

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq >&2; apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
}
