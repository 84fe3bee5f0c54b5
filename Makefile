# hodei-autoscaler: `make run` to try it, `make test` for the whole suite.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
WORKER_IMAGE ?= hodei-worker:dev
CONFIG ?= config.example.yaml
N ?= 6
DURATION ?= 20s
POOL ?= default
FUZZTIME ?= 30s

.PHONY: all build worker-image run jobs status test test-unit test-k8s test-deploy k8s-tools tools bench bench-ha bench-k8s bench-policy fuzz lint image clean

all: build

build: ## the daemon, statically linked
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/autoscaler ./cmd/autoscaler

worker-image: ## the example worker image (FROM scratch, no registry needed)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o examples/worker/worker ./examples/worker
	docker build -q -t $(WORKER_IMAGE) examples/worker >/dev/null
	@echo "built image $(WORKER_IMAGE)"

run: build worker-image ## start the daemon on config.example.yaml (embedded NATS, Docker provider)
	./$(BIN)/autoscaler run --config $(CONFIG)

jobs: build ## queue N jobs of DURATION on POOL (while make run is running)
	./$(BIN)/autoscaler queue --config $(CONFIG) --pool $(POOL) --count $(N) --duration $(DURATION)

status: build ## what the daemon sees, per pool (WATCH=1 keeps watching)
	@./$(BIN)/autoscaler status --config $(CONFIG) $(if $(WATCH),--watch)

test: k8s-tools tools ## everything: unit, NATS, Docker, Kubernetes, Helm and Prometheus tests, with the race detector
	$(GO) test -race -count=1 -timeout 45m ./...

test-unit: ## the fast part: no Docker, no control plane
	$(GO) test -race -short ./internal/domain/... ./internal/policy/... ./internal/config/... ./internal/engine/... ./internal/reconciler/... ./internal/logging/... ./internal/clock/... ./internal/events/... ./internal/inputs/... ./internal/routing/... ./internal/lease/... ./internal/sim/... ./internal/providers/kubernetes/... ./internal/configwatch/... ./internal/poolstatus/... ./internal/metrics/... ./cmd/...

test-k8s: k8s-tools ## only the Kubernetes provider, against the test control plane
	REQUIRE_K8S=1 $(GO) test -race -count=1 -timeout 30m ./internal/providers/kubernetes/

test-deploy: k8s-tools tools ## the Helm chart, alert rules and dashboard, with the real helm, promtool and control plane
	REQUIRE_K8S=1 REQUIRE_TOOLS=1 $(GO) test -race -count=1 -timeout 20m ./deploy/

tools: ## build (once; cached in .cache/tools) helm, promtool, prometheus and nats-server for the tests
	./tools/realtools/build.sh

k8s-tools: ## build (once; cached in .cache/k8s) etcd, kube-apiserver, kube-scheduler and kwok for the tests
	./tools/k8s/build.sh

bench: ## run every benchmark and regenerate the table in BENCHMARKS.md
	./bench/run.sh

bench-k8s: k8s-tools ## 0 -> 200 pods: the daemon's provider vs client-go at its default QPS; 30 workers on two tiers vs Kubernetes alone
	REQUIRE_K8S=1 $(GO) test -run '^$$' -bench BenchmarkKubernetesScaleUp -benchtime 1x -timeout 60m ./internal/providers/kubernetes/
	REQUIRE_K8S=1 REQUIRE_DOCKER=1 $(GO) test -run '^$$' -bench BenchmarkTiersScaleUp -benchtime 1x -timeout 40m ./internal/providers/kubernetes/

bench-ha: ## the HA rows of make bench alone: failover (row 7) and the steady-state cost of HA (row 8)
	BENCH_ROWS="7 8" ./bench/run.sh

bench-policy: ## simulator backtests of the policy against the oracle and the other autoscalers
	$(GO) run ./bench/policy

fuzz: ## fuzz the event decoders (CloudEvents, and its agreement with encoding/json; the envelope fast path against the full decoder; the ack-reply parser against Metadata; Hodei's events, goccy against encoding/json in the Hodei decoder, the Hodei scanner against the full decoder), the worker-id check against the uuid package and the config parser, FUZZTIME each
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzDecoderAgrees$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBinary$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzScanAgrees$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzParseAckReply$$' -fuzztime $(FUZZTIME) ./internal/events/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHodei$$' -fuzztime $(FUZZTIME) ./internal/inputs/hodeijobs/
	$(GO) test -run '^$$' -fuzz '^FuzzFastAgrees$$' -fuzztime $(FUZZTIME) ./internal/inputs/hodeijobs/
	$(GO) test -run '^$$' -fuzz '^FuzzScanAgrees$$' -fuzztime $(FUZZTIME) ./internal/inputs/hodeijobs/
	$(GO) test -run '^$$' -fuzz '^FuzzParseWorkerIDAgreesWithUUID$$' -fuzztime $(FUZZTIME) ./internal/domain/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

image: build ## the daemon's image (FROM scratch)
	cp $(BIN)/autoscaler deploy/autoscaler
	docker build -q -t hodei-autoscaler:$(VERSION) -f deploy/Dockerfile deploy >/dev/null
	rm -f deploy/autoscaler
	@echo "built image hodei-autoscaler:$(VERSION)"

clean:
	rm -rf $(BIN) examples/worker/worker data
