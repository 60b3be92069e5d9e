# muon — see README.md. `make run` is the quick start, `make test` the tests.
SHELL := /bin/bash
GO ?= go
BIN := bin/muon
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table or DWARF (stack traces and pprof still work): the
# binary an edge device takes is about 42 MB instead of 60 MB.
LDFLAGS := -s -w -X main.version=$(VERSION)
# No cgo: muon links no C, and Go's own DNS resolver and user lookup replace
# libc's. The binary is static (it runs on any Linux of its architecture,
# musl-based ones included) and a process no longer maps libc and the
# dynamic loader (about 1.7 MB resident). Exported, so that tests, lint and
# the bench share the build's cache.
export CGO_ENABLED := 0
# Apache Kafka for integration tests and benchmarks (integration/kafka/).
KAFKA_PORT ?= 19092
# Beam's Flink job server (integration/flink/), same Beam version as go.mod.
FLINK_PORT ?= 18099
# A Flink session cluster (a JobManager's REST API on FLINK_CLUSTER_PORT, RPC
# on the next port, two TaskManagers) and a job server submitting to it.
FLINK_CLUSTER_PORT ?= 18181
FLINK_CLUSTER_JOB_PORT ?= 18199
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test unit integration chaos lint bench clean kafka-start kafka-stop keys beam

all: build

# go.mod replaces the Beam Go SDK with third_party/beam/sdks: the released
# module with muon's patches (third_party/beam/prepare.sh). Every target that
# runs go makes it first.
BEAM := third_party/beam/sdks/.stamp
beam: $(BEAM)
$(BEAM): third_party/beam/prepare.sh $(wildcard third_party/beam/*.patch) go.mod
	third_party/beam/prepare.sh

build: $(BEAM)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/muon

# The quick start, in one process sharing one embedded Kafka broker: replay
# optdigits into Kafka, train an MLP data-parallel on the edge runner, publish
# a pruned int8 snapshot signed with keys/muon.key (made here if missing),
# then stream the test split through inference to the predictions topic.
run: build keys
	$(BIN) run --config configs/train-digits.yaml --config configs/infer-digits.yaml

# The signing key pair the example train specs name (snapshot.key):
# keys/muon.key signs, keys/muon.pub verifies. Never overwritten.
keys: keys/muon.key

keys/muon.key: | $(BIN)
	$(BIN) models keygen --dir keys --name muon

$(BIN): build

# Unit tests, lint, then the integration tests against Apache Kafka and
# Beam's Flink job server (both started and stopped here), the embedded
# broker, and headless Chromium for the dashboard (installed from Debian's
# packages when missing).
test: lint unit integration

unit: $(BEAM)
	$(GO) test -count=1 ./...

lint: $(BEAM)
	@out=$$(find . -name '*.go' -not -path './third_party/*' -not -path './.git/*' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	$(GO) run $(STATICCHECK) ./...

integration: $(BEAM)
	set -euo pipefail; \
	trap 'integration/kafka/stop.sh $(KAFKA_PORT); integration/flink/stop.sh $(FLINK_PORT); integration/flink/stop.sh $(FLINK_CLUSTER_JOB_PORT); integration/flink/cluster.sh stop $(FLINK_CLUSTER_PORT)' EXIT; \
	export "$$(integration/python/venv.sh)"; \
	export "$$(integration/browser/install.sh)"; \
	export "$$(integration/kafka/start.sh $(KAFKA_PORT))"; \
	export "$$(integration/flink/start.sh $(FLINK_PORT))"; \
	export "$$(integration/flink/cluster.sh start $(FLINK_CLUSTER_PORT))"; \
	export "$$(MUON_FLINK_MASTER=$$FLINK_MASTER integration/flink/start.sh $(FLINK_CLUSTER_JOB_PORT) | sed 's/^FLINK_ENDPOINT=/FLINK_CLUSTER_ENDPOINT=/')"; \
	MUON_REQUIRE_KAFKA=1 MUON_REQUIRE_FLINK=1 MUON_REQUIRE_FLINK_CLUSTER=1 MUON_REQUIRE_PYTHON=1 MUON_REQUIRE_BROWSER=1 $(GO) test -count=1 -tags integration -timeout 20m -v ./integration/... 2>&1 | \
		grep -E --line-buffered '^(=== RUN|--- |PASS|FAIL|ok|panic|CHAOS)|_test.go:' ; exit $${PIPESTATUS[0]}

# The fault suite: every fault scenario (integration/chaos_test.go) against
# the embedded broker and Apache Kafka (started and stopped here), one line
# each: CHAOS <scenario> survived|failed lost=<n> duplicates=<n> recovery_ms=<n>.
# The same tests run in make test.
chaos: $(BEAM)
	set -euo pipefail; \
	trap 'integration/kafka/stop.sh $(KAFKA_PORT)' EXIT; \
	export "$$(integration/kafka/start.sh $(KAFKA_PORT))"; \
	MUON_REQUIRE_KAFKA=1 $(GO) test -count=1 -tags integration -timeout 15m -v -run Chaos ./integration 2>&1 | \
		grep -E --line-buffered '^(CHAOS|--- FAIL|FAIL|ok|panic)|_test.go:' ; exit $${PIPESTATUS[0]}

# Figures as `BENCH <name> <value> <unit>` lines, on the embedded broker and
# on Apache Kafka and Beam's Flink job server (started and stopped here),
# training beside scikit-learn and inference beside Beam Python's
# RunInference, from the Python venvs (integration/python/venv.sh: a venv
# that cannot be built stops the bench here, with pip's reason).
bench: build
	set -euo pipefail; \
	export "$$(integration/python/venv.sh)"; \
	export "$$(integration/python/venv.sh beam)"; \
	export "$$(integration/python/venv.sh aeon)"; \
	trap 'integration/kafka/stop.sh $(KAFKA_PORT); integration/flink/stop.sh $(FLINK_PORT); integration/flink/stop.sh $(FLINK_CLUSTER_JOB_PORT); integration/flink/cluster.sh stop $(FLINK_CLUSTER_PORT)' EXIT; \
	export "$$(integration/kafka/start.sh $(KAFKA_PORT))"; \
	export "$$(integration/flink/start.sh $(FLINK_PORT))"; \
	export "$$(integration/flink/cluster.sh start $(FLINK_CLUSTER_PORT))"; \
	export "$$(MUON_FLINK_MASTER=$$FLINK_MASTER integration/flink/start.sh $(FLINK_CLUSTER_JOB_PORT) | sed 's/^FLINK_ENDPOINT=/FLINK_CLUSTER_ENDPOINT=/')"; \
	$(GO) run ./integration/bench --muon $(BIN) --kafka "$$KAFKA_BROKERS"

clean:
	rm -rf bin out third_party/beam/sdks
