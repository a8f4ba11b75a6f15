#!/usr/bin/env bash
# Builds, once, the real Kubernetes binaries the cluster tier runs, from Debian's own
# `kubernetes` source package (the full 1.20.2 tree with vendor/; no other network needed),
# and caches them outside the repository:
#
#   ${PODTOKEN_K8S_CACHE:-$HOME/.cache/podtoken-k8s}/
#     apt/                      a private apt configuration with the deb-src entries
#     <debian version>/src/     the source package, unpacked (Debian's patches applied) in k8s/
#     <debian version>/bin/     kube-apiserver, podtoken-kubelet (+ .sha256 of its Go source)
#
# Every step is skipped when its output exists; podtoken-kubelet is rebuilt only when its
# Go source (test/cluster/podtoken-kubelet/) changed. The machine's own apt sources stay
# untouched. Missing apt packages (golang-go, etcd-server, rsync, dpkg-dev, make) are
# installed when running as root, non-interactively; otherwise the script says what to run.
#
# Progress goes to stderr; the last line on stdout is the bin folder. A cold run takes
# 10–20 minutes on 2 cores (kube-apiserver, with its generated OpenAPI definitions);
# a warm run under a second.
set -euo pipefail

K8S_VERSION='1.20.5+really1.20.2-1.1+deb12u1' # Debian bookworm's source package `kubernetes`
CACHE="${PODTOKEN_K8S_CACHE:-$HOME/.cache/podtoken-k8s}"
ROOT="$CACHE/$K8S_VERSION"
SRC="$ROOT/src"
TREE="$SRC/k8s"
BIN="$ROOT/bin"
TOOL_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/podtoken-kubelet"
APT="$CACHE/apt"
APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache")

say() { echo "› cluster build: $*" >&2; }
trap 'say "failed (line $LINENO, exit $?)"' ERR
started=$SECONDS

# 1. The tools: Go 1.19 and etcd 3.4 from Debian, and what the Kubernetes build calls.
missing=()
command -v go >/dev/null || missing+=(golang-go)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v rsync >/dev/null || missing+=(rsync)
command -v dpkg-source >/dev/null || missing+=(dpkg-dev)
command -v make >/dev/null || missing+=(make)
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) != 0 ]]; then
    say "missing apt packages: ${missing[*]}; run as root: apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$SRC" "$BIN" "$APT/lists/partial" "$APT/cache/archives/partial"
# One build at a time per cache (two test runs starting together wait for each other).
exec 9>"$ROOT/.lock"
flock 9

# 2. The source package, through a private apt configuration: deb-src entries for the same
#    Debian archives as the machine's own deb entries (one-line and deb822 formats).
if [[ ! -f "$SRC/kubernetes_$K8S_VERSION.dsc" ]]; then
  if [[ ! -s "$APT/sources.list" ]]; then
    {
      for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        if [[ -f $file ]]; then awk '$1 == "deb" && /debian/ { $1 = "deb-src"; print }' "$file"; fi
      done
      for file in /etc/apt/sources.list.d/*.sources; do
        [[ -f $file ]] || continue
        # deb822 stanzas: one deb-src line per URI and suite of each enabled "Types: deb" stanza.
        awk 'function flush() {
               if (types ~ /(^| )deb( |$)/ && uris ~ /debian/ && enabled != "no")
                 for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++) print "deb-src " uri[u] " " suite[s] " " comps
               types = ""; uris = ""; comps = ""; enabled = ""; nu = 0; ns = 0 }
             /^[ \t]*$/ { flush(); next }
             /^#/ { next }
             { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "") }
             key == "types" { types = $0 }
             key == "uris" { uris = $0; nu = split($0, uri, " ") }
             key == "suites" { ns = split($0, suite, " ") }
             key == "components" { comps = $0 }
             key == "enabled" { enabled = tolower($0) }
             END { flush() }' "$file"
      done
    } >"$APT/sources.list.tmp"
    [[ -s "$APT/sources.list.tmp" ]] || { say "no Debian deb entry found in /etc/apt to derive deb-src entries from"; exit 1; }
    mv "$APT/sources.list.tmp" "$APT/sources.list"
  fi
  if ! compgen -G "$APT/lists/*_Sources*" >/dev/null; then
    say "apt-get update (private configuration in $APT)"
    apt-get "${APT_OPTS[@]}" update -qq >&2
  fi
  say "apt-get source kubernetes=$K8S_VERSION"
  (cd "$SRC" && apt-get "${APT_OPTS[@]}" source --download-only -qq "kubernetes=$K8S_VERSION" >&2)
fi
if [[ ! -f "$TREE/Makefile" ]]; then
  say "dpkg-source -x (Debian's patches applied)"
  rm -rf "$TREE"
  (cd "$SRC" && dpkg-source -x "kubernetes_$K8S_VERSION.dsc" k8s >&2)
fi

# Build in GOPATH mode from the vendored tree, as Debian's debian/rules does.
export GO111MODULE=off GOPROXY=off CGO_ENABLED=0 GOFLAGS=
mkdir -p "$TREE/.go/src/k8s.io"
ln -sfn ../../.. "$TREE/.go/src/k8s.io/kubernetes"

# 3. kube-apiserver. `make WHAT=…` runs the code generators first (deepcopy, defaulter,
#    conversion, OpenAPI: the last needs rsync).
if [[ ! -x "$BIN/kube-apiserver" ]]; then
  say "building kube-apiserver (10–20 minutes on 2 cores; log: $ROOT/build.log)"
  if ! (cd "$TREE" && GOPATH="$TREE/.go" make WHAT=cmd/kube-apiserver >"$ROOT/build.log" 2>&1); then
    tail -n 40 "$ROOT/build.log" >&2
    say "kube-apiserver build failed (full log: $ROOT/build.log)"
    exit 1
  fi
  built="$TREE/_output/local/bin/linux/$(go env GOARCH)/kube-apiserver"
  [[ -x $built ]] || built="$TREE/_output/bin/kube-apiserver"
  cp "$built" "$BIN/kube-apiserver.tmp" && mv "$BIN/kube-apiserver.tmp" "$BIN/kube-apiserver"
fi

# 4. podtoken-kubelet: the repository's Go program, built inside the tree so that it uses
#    the tree's vendored packages. Keyed by a hash of its source.
hash="$(cd "$TOOL_SRC" && sha256sum ./*.go | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$BIN/podtoken-kubelet" || "$(cat "$BIN/podtoken-kubelet.sha256" 2>/dev/null)" != "$hash" ]]; then
  say "building podtoken-kubelet (source changed or not built yet)"
  # The kube build leaves its own GOPATH tree under _output; reuse it so that the go build
  # cache it filled applies (same package folders).
  gopath="$TREE/_output/local/go"
  mkdir -p "$gopath/src/k8s.io"
  ln -sfn "$TREE" "$gopath/src/k8s.io/kubernetes"
  rm -rf "$TREE/cmd/podtoken-kubelet"
  mkdir -p "$TREE/cmd/podtoken-kubelet"
  cp "$TOOL_SRC"/*.go "$TREE/cmd/podtoken-kubelet/"
  (cd "$gopath/src/k8s.io/kubernetes" && GOPATH="$gopath" go build -o "$BIN/podtoken-kubelet.tmp" ./cmd/podtoken-kubelet >&2)
  mv "$BIN/podtoken-kubelet.tmp" "$BIN/podtoken-kubelet"
  echo "$hash" >"$BIN/podtoken-kubelet.sha256"
fi

say "ready in $((SECONDS - started)) s: $BIN ($("$BIN/kube-apiserver" --version 2>/dev/null), etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }'), $(go version | awk '{ print $3 }'))"
echo "$BIN"
