# helm for the chart's tests (test/chart/): built from its Go module with the machine's Go into
# $(TOOLS_CACHE), keyed by version. helm.sh/helm/v4's go.mod has no replace or exclude lines,
# so a plain `go install m/cmd/helm@v` builds it (shared/TOOLS.md).
#
# Included by the Makefile, which defines TOOLS_CACHE and adds $(HELM_TOOLS) to `tools`.
#
# v4.3.2: the newest v4 release on the Go module proxy when the chart was written. Measured on a
# 2-core machine with an empty module cache for helm's dependencies: 1m55s wall (modules
# downloaded and built; 134 s user + 35 s system CPU), the binary 67 MB (-s -w).

HELM_VERSION := 4.3.2
HELM_BIN_DIR := $(TOOLS_CACHE)/helm-$(HELM_VERSION)/bin

# GOBIN to a temporary directory and renamed, so an interrupted build leaves no helm behind.
# internal/version.version gives `helm version` its full string (else v4.3 with no patch).
$(HELM_BIN_DIR)/helm:
	mkdir -p $(HELM_BIN_DIR)/tmp
	cd $(TOOLS_CACHE) && CGO_ENABLED=0 GOBIN=$(HELM_BIN_DIR)/tmp GOFLAGS=-mod=mod GOTOOLCHAIN=auto go install -trimpath \
	  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=v$(HELM_VERSION)" \
	  helm.sh/helm/v4/cmd/helm@v$(HELM_VERSION)
	mv -f $(HELM_BIN_DIR)/tmp/helm $@
	rmdir $(HELM_BIN_DIR)/tmp
	$@ version

HELM_TOOLS := $(HELM_BIN_DIR)/helm

# Where test/chart finds helm; a user may point it elsewhere.
export PROMSHARD_HELM_BIN ?= $(HELM_BIN_DIR)/helm

.PHONY: helm-tools
helm-tools: $(HELM_TOOLS)
