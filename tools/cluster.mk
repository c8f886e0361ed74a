# The one-node cluster where pods run (docs/cluster.md, test/support/cluster.ts): the node's
# programs built from their Go modules into $(TOOLS_CACHE) keyed by version (kubelet,
# kube-scheduler and kube-proxy from tools/kubernetes like the control plane; containerd 2.x;
# CoreDNS; the pause program), Debian's runc, CNI plugins and iptables, and the images as OCI
# archives in $(PROMSHARD_IMAGES_DIR).
#
# Included by the Makefile after tools/kubernetes.mk (KUBERNETES_BIN, KUBE_GO_ENV, kube_check_mod).

CONTAINERD_VERSION := 2.4.2
COREDNS_VERSION := 1.15.0
# Our own pause program (tools/pause/main.go) and CoreDNS main (tools/coredns/main.go): the
# binaries are keyed by version, not by the sources' times (a fresh clone's are all new), so
# bump PAUSE_VERSION, or COREDNS_VERSION's directory, when those files change.
PAUSE_VERSION := 1

CONTAINERD_BIN := $(TOOLS_CACHE)/containerd-$(CONTAINERD_VERSION)/bin
COREDNS_BIN := $(TOOLS_CACHE)/coredns-$(COREDNS_VERSION)/bin
PAUSE_BIN := $(TOOLS_CACHE)/pause-$(PAUSE_VERSION)/bin

# kubectl too: not needed by the tests, but by anyone trying `make cluster`.
NODE_BINARIES := $(KUBERNETES_BIN)/kubelet $(KUBERNETES_BIN)/kube-scheduler $(KUBERNETES_BIN)/kube-proxy $(KUBERNETES_BIN)/kubectl
CONTAINERD_BINARIES := $(CONTAINERD_BIN)/containerd $(CONTAINERD_BIN)/containerd-shim-runc-v2 $(CONTAINERD_BIN)/ctr
CLUSTER_TOOLS := $(NODE_BINARIES) $(CONTAINERD_BINARIES) $(COREDNS_BIN)/coredns $(PAUSE_BIN)/pause

# Debian's packages the node needs: runc (containerd's runtime), the CNI plugins (bridge,
# host-local, loopback, portmap in /usr/lib/cni) and iptables (kube-proxy, the forward guard).
CLUSTER_PACKAGES := /usr/sbin/runc /usr/lib/cni/bridge /usr/sbin/iptables

$(CLUSTER_PACKAGES):
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	  runc containernetworking-plugins iptables

# The same recipe as kube-apiserver (tools/kubernetes.mk): one go.mod, one build cache.
$(NODE_BINARIES):
	$(call kube_check_mod,kubernetes,k8s.io/kubernetes,$(KUBERNETES_VERSION),make kube-mod)
	mkdir -p $(KUBERNETES_BIN)
	cd $(KUBE_MK_DIR)/kubernetes && $(KUBE_GO_ENV) go build -trimpath -tags selinux,notest,grpcnotrace \
	  -ldflags "-s -w $(KUBE_VERSION_LDFLAGS)" \
	  -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv -f $@.tmp $@
	$@ $(if $(filter %/kubectl,$@),version --client,--version)

# Tags as upstream's static release build (Makefile: STATIC=1): no cgo; no_btrfs because the btrfs
# snapshotter needs cgo and libbtrfs, urfave_cli_no_docs to leave out the man-page generator.
$(CONTAINERD_BINARIES):
	$(call kube_check_mod,containerd,github.com/containerd/containerd/v2,$(CONTAINERD_VERSION),cd tools/containerd && go get github.com/containerd/containerd/v2@v$(CONTAINERD_VERSION) && go mod tidy)
	mkdir -p $(CONTAINERD_BIN)
	cd $(KUBE_MK_DIR)/containerd && $(KUBE_GO_ENV) go build -trimpath -tags no_btrfs,urfave_cli_no_docs,netgo,osusergo,static_build \
	  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=v$(CONTAINERD_VERSION) -X github.com/containerd/containerd/v2/version.Package=github.com/containerd/containerd/v2" \
	  -o $@.tmp github.com/containerd/containerd/v2/cmd/$(notdir $@)
	mv -f $@.tmp $@

$(COREDNS_BIN)/coredns:
	$(call kube_check_mod,coredns,github.com/coredns/coredns,$(COREDNS_VERSION),cd tools/coredns && go get github.com/coredns/coredns@v$(COREDNS_VERSION) && go mod tidy)
	mkdir -p $(COREDNS_BIN)
	cd $(KUBE_MK_DIR)/coredns && $(KUBE_GO_ENV) go build -trimpath -ldflags "-s -w" -o $@.tmp .
	mv -f $@.tmp $@
	$@ -version

$(PAUSE_BIN)/pause:
	mkdir -p $(PAUSE_BIN)
	cd $(KUBE_MK_DIR)/pause && $(KUBE_GO_ENV) go build -trimpath -ldflags "-s -w" -o $@.tmp .
	mv -f $@.tmp $@

# One big build at a time, even under make -j: each already uses every core.
$(KUBERNETES_BIN)/kubelet: | $(filter %/kube-controller-manager,$(KUBE_TOOLS))
$(KUBERNETES_BIN)/kube-scheduler: | $(KUBERNETES_BIN)/kubelet
$(KUBERNETES_BIN)/kube-proxy: | $(KUBERNETES_BIN)/kube-scheduler
$(KUBERNETES_BIN)/kubectl: | $(KUBERNETES_BIN)/kube-proxy
$(CONTAINERD_BIN)/containerd: | $(KUBERNETES_BIN)/kubectl
$(CONTAINERD_BIN)/containerd-shim-runc-v2: | $(CONTAINERD_BIN)/containerd
$(CONTAINERD_BIN)/ctr: | $(CONTAINERD_BIN)/containerd-shim-runc-v2
$(COREDNS_BIN)/coredns: | $(CONTAINERD_BIN)/ctr

.PHONY: cluster-tools images cluster cluster-down
cluster-tools: $(CLUSTER_PACKAGES) $(CLUSTER_TOOLS)

# Where test/support/cluster.ts finds the node's programs (colon-separated, first match wins).
export PROMSHARD_CLUSTER_ASSETS ?= $(KUBERNETES_BIN):$(CONTAINERD_BIN):$(COREDNS_BIN):$(PAUSE_BIN)

# The images as OCI archives (scripts/images.ts); the promshard one from this checkout's dist.
export PROMSHARD_IMAGES_DIR ?= $(CURDIR)/.images
images: build cluster-tools $(PROMETHEUS3_DIR)/prometheus
	node scripts/images.ts

# Starts the cluster in the background (root: it creates a bridge, mounts and iptables rules)
# and prints its kubeconfig; `make cluster-down` stops it and removes all of it.
cluster: images $(KUBE_TOOLS)
	node scripts/cluster.ts up

cluster-down:
	node scripts/cluster.ts down
