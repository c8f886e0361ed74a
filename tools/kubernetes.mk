# The control plane the tests run against (test/support/kube.ts): kube-apiserver and
# kube-controller-manager from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3, built
# from their Go modules with the machine's Go into $(TOOLS_CACHE), keyed by version. Our own
# go.mod files (tools/kubernetes, tools/etcd) pin the versions; see the comments there.
#
# Included by the Makefile, which defines TOOLS_CACHE and adds $(KUBE_TOOLS) to `tools`.
# A user who already has the binaries (for example envtest's, which lack kube-controller-manager)
# sets KUBEBUILDER_ASSETS to their directory: what it holds is used and not built.
#
# Measured on a 2-core machine from empty Go build and module caches (module downloads included):
# kube-apiserver 4m40s, then kube-controller-manager 1m40s and etcd 23 s (37 s on its own). With
# the build cache warm a rebuild takes ~5 s. The caches need ~3.7 GB (build) and ~0.7 GB (modules).

KUBE_MK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

KUBERNETES_VERSION := 1.37.2
ETCD_VERSION := 3.7.3

KUBERNETES_BIN := $(TOOLS_CACHE)/kubernetes-$(KUBERNETES_VERSION)/bin
ETCD_BIN := $(TOOLS_CACHE)/etcd-$(ETCD_VERSION)/bin

# Without these, /version and --version report a placeholder (v0.0.0-master). Set in both
# packages as upstream's hack/lib/version.sh does.
KUBE_VERSION_LDFLAGS = $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=v$(KUBERNETES_VERSION) \
  -X $(p).gitMajor=$(word 1,$(subst ., ,$(KUBERNETES_VERSION))) \
  -X $(p).gitMinor=$(word 2,$(subst ., ,$(KUBERNETES_VERSION))) \
  -X $(p).gitTreeState=clean \
  -X $(p).buildDate=$$(date -u +%Y-%m-%dT%H:%M:%SZ))

# GOFLAGS: go.sum is committed (-mod=readonly); -buildvcs=false as the module is not a VCS checkout
# of its own. Tags and -s -w as upstream's release build (hack/lib/golang.sh) sets them.
KUBE_GO_ENV := CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=auto

# Fails unless tools/<1>/go.mod requires <2> at v<3>: a version changed here alone would
# otherwise build the old one under the new name.
kube_check_mod = v=$$(cd $(KUBE_MK_DIR)/$(1) && GOFLAGS=-mod=readonly go list -m -f '{{.Version}}' $(2)); \
  if [ "$$v" != v$(3) ]; then echo "tools/$(1)/go.mod requires $(2) $$v, not v$(3): run \`$(4)\`" >&2; exit 1; fi

# Each binary is built to a temporary name and renamed, so an interrupted build leaves none.
$(KUBERNETES_BIN)/kube-apiserver $(KUBERNETES_BIN)/kube-controller-manager:
	$(call kube_check_mod,kubernetes,k8s.io/kubernetes,$(KUBERNETES_VERSION),make kube-mod)
	mkdir -p $(KUBERNETES_BIN)
	cd $(KUBE_MK_DIR)/kubernetes && $(KUBE_GO_ENV) go build -trimpath -tags selinux,notest,grpcnotrace \
	  -ldflags "-s -w $(KUBE_VERSION_LDFLAGS)" \
	  -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv -f $@.tmp $@
	$@ --version

$(ETCD_BIN)/etcd:
	$(call kube_check_mod,etcd,go.etcd.io/etcd/server/v3,$(ETCD_VERSION),cd tools/etcd && go get go.etcd.io/etcd/server/v3@v$(ETCD_VERSION) && go mod tidy)
	mkdir -p $(ETCD_BIN)
	cd $(KUBE_MK_DIR)/etcd && $(KUBE_GO_ENV) go build -trimpath \
	  -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$(ETCD_VERSION)" \
	  -o $@.tmp go.etcd.io/etcd/server/v3
	mv -f $@.tmp $@
	$@ --version

# The binaries to build: those KUBEBUILDER_ASSETS does not already hold.
KUBE_TOOLS := $(strip $(foreach b,$(KUBERNETES_BIN)/kube-apiserver $(KUBERNETES_BIN)/kube-controller-manager $(ETCD_BIN)/etcd,\
  $(if $(and $(KUBEBUILDER_ASSETS),$(wildcard $(KUBEBUILDER_ASSETS)/$(notdir $(b)))),,$(b))))

# One big build at a time, even under make -j: each already uses every core.
$(KUBERNETES_BIN)/kube-controller-manager: | $(filter %/kube-apiserver,$(KUBE_TOOLS))

# Where test/support/kube.ts looks for etcd, kube-apiserver and kube-controller-manager: a
# colon-separated list of directories, each binary taken from the first that holds it.
export PROMSHARD_KUBE_ASSETS ?= $(subst $() ,:,$(strip $(KUBEBUILDER_ASSETS) $(KUBERNETES_BIN) $(ETCD_BIN)))

.PHONY: kube-tools
kube-tools: $(KUBE_TOOLS)

# Rewrites tools/kubernetes/go.mod for KUBERNETES_VERSION (run it after changing the version,
# then `make tools`): our header comment, upstream's go and godebug lines, the require, the
# tools (control plane and node), and a replace for each k8s.io staging module that upstream both replaces and requires
# at v0.0.0, by its published v0.<minor>.<patch> twin (upstream also replaces sample-cli-plugin
# and sample-controller, which it does not require and the proxy does not serve). `go mod tidy`
# then fills in the rest from scratch, so a downgrade keeps no newer requirement behind.
.PHONY: kube-mod
kube-mod:
	cd $(KUBE_MK_DIR)/kubernetes; \
	upstream=$$(GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes@v$(KUBERNETES_VERSION) | sed -n 's/^\s*"GoMod": "\(.*\)",$$/\1/p'); \
	staging=v0.$(word 2,$(subst ., ,$(KUBERNETES_VERSION))).$(word 3,$(subst ., ,$(KUBERNETES_VERSION))); \
	{ sed '/^module /q' go.mod; echo; \
	  awk '/^go / {print; print ""} /^godebug \(/ {b = 1} b || /^godebug [^(]/ {print} b && /^\)/ {b = 0}' $$upstream; echo; \
	  echo "require k8s.io/kubernetes v$(KUBERNETES_VERSION)"; echo; \
	  printf 'tool (\n\tk8s.io/kubernetes/cmd/kube-apiserver\n\tk8s.io/kubernetes/cmd/kube-controller-manager\n\tk8s.io/kubernetes/cmd/kube-proxy\n\tk8s.io/kubernetes/cmd/kube-scheduler\n\tk8s.io/kubernetes/cmd/kubectl\n\tk8s.io/kubernetes/cmd/kubelet\n)\n\nreplace (\n'; \
	  awk '/^replace \(/ {r = 1; next} r && /^\)/ {r = 0} r && /=>/ {rep[$$1] = 1} \
	    /^\tk8s\.io\/[^ ]+ v0\.0\.0$$/ {req[$$1] = 1} END {for (m in rep) if (m in req) print m}' $$upstream | \
	    sort | while read -r m; do printf '\t%s => %s %s\n' "$$m" "$$m" "$$staging"; done; \
	  echo ')'; } > go.mod.new; \
	mv go.mod.new go.mod; \
	rm -f go.sum; \
	GOFLAGS=-mod=mod go mod tidy
