# Thanos for the tests (test/support/thanos.ts): built from its Go module with the machine's Go
# into $(TOOLS_CACHE), keyed by version. Our own go.mod (tools/thanos) requires
# github.com/thanos-io/thanos and copies upstream's six replace lines, which `go install m@v`
# refuses and a dependency's go.mod cannot pass on.
#
# Included by the Makefile, which defines TOOLS_CACHE and adds $(THANOS_TOOLS) to `tools`.
#
# v0.42.4 rather than v0.42.5: the two go.mod files differ only in v0.42.5's `go 1.26.10`, which
# would fetch a second toolchain (and rebuild the standard library) for nothing we test.
#
# Measured on a 2-core machine, modules already downloaded (`go mod tidy`, ~1 min once) and a build
# cache without Thanos's dependencies: 6m23s wall while two other Go builds shared the cores
# (65% of one core's worth: 210 s user + 41 s system CPU, 1.3 GB peak RSS), so ~2.5 min alone.

THANOS_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

THANOS_VERSION := 0.42.4
THANOS_BIN_DIR := $(TOOLS_CACHE)/thanos-$(THANOS_VERSION)/bin

# GOFLAGS: go.sum is committed (-mod=readonly); -buildvcs=false as the module is not a VCS checkout
# of its own. Tags as upstream's release build (scripts/build.sh): `slicelabels` is not optional,
# without it Thanos compiles but casts between two label layouts and corrupts memory.
THANOS_GO_ENV := CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=auto
THANOS_LDFLAGS = -s -w \
  -X github.com/prometheus/common/version.Version=$(THANOS_VERSION) \
  -X github.com/prometheus/common/version.Revision=v$(THANOS_VERSION) \
  -X github.com/prometheus/common/version.Branch=HEAD \
  -X github.com/prometheus/common/version.BuildUser=promshard \
  -X github.com/prometheus/common/version.BuildDate=$$(date -u +%Y%m%d-%H:%M:%S)

# Built to a temporary name and renamed, so an interrupted build leaves none. The version check
# fails when tools/thanos/go.mod requires another version: a version changed here alone would
# otherwise build the old one under the new name.
$(THANOS_BIN_DIR)/thanos:
	v=$$(cd $(THANOS_MK_DIR)/thanos && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' github.com/thanos-io/thanos); \
	if [ "$$v" != v$(THANOS_VERSION) ]; then \
	  echo "tools/thanos/go.mod requires github.com/thanos-io/thanos $$v, not v$(THANOS_VERSION): run \`make thanos-mod\`" >&2; exit 1; fi
	mkdir -p $(THANOS_BIN_DIR)
	cd $(THANOS_MK_DIR)/thanos && $(THANOS_GO_ENV) go build -trimpath -tags netgo,slicelabels \
	  -ldflags "$(THANOS_LDFLAGS)" -o $@.tmp github.com/thanos-io/thanos/cmd/thanos
	mv -f $@.tmp $@
	$@ --version

THANOS_TOOLS := $(THANOS_BIN_DIR)/thanos

# Where test/support/thanos.ts finds thanos; a user may point it elsewhere.
export PROMSHARD_THANOS_BIN ?= $(THANOS_BIN_DIR)/thanos

.PHONY: thanos-tools
thanos-tools: $(THANOS_TOOLS)

# Rewrites tools/thanos/go.mod for THANOS_VERSION (run it after changing the version, then
# `make tools`): our header comment, upstream's go and godebug lines, the require, the tool, and
# upstream's replace block verbatim. `go mod tidy` then fills in the rest from scratch.
.PHONY: thanos-mod
thanos-mod:
	cd $(THANOS_MK_DIR)/thanos; \
	upstream=$$(GOFLAGS=-mod=mod go mod download -json github.com/thanos-io/thanos@v$(THANOS_VERSION) | sed -n 's/^\s*"GoMod": "\(.*\)",$$/\1/p'); \
	{ sed '/^module /q' go.mod; echo; \
	  awk '/^go / {print; print ""} /^godebug \(/ {b = 1} b || /^godebug [^(]/ {print} b && /^\)/ {b = 0}' $$upstream; \
	  echo "require github.com/thanos-io/thanos v$(THANOS_VERSION)"; echo; \
	  echo "tool github.com/thanos-io/thanos/cmd/thanos"; echo; \
	  awk '/^replace \(/ {r = 1} r {print} r && /^\)/ {r = 0}' $$upstream; } > go.mod.new; \
	mv go.mod.new go.mod; \
	rm -f go.sum; \
	GOFLAGS=-mod=mod go mod tidy
