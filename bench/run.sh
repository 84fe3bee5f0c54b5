#!/usr/bin/env bash
# bench/run.sh (make bench): run every benchmark of the suite and write the
# Markdown table to bench/results.md and into BENCHMARKS.md between
# <!-- bench:begin --> and <!-- bench:end -->.
#
# Needs Go, valgrind for row 0b (instruction counts) and, for row 4, a Docker engine (the worker image is built here
# with `make worker-image`, FROM scratch: no registry). NATS runs inside the
# benchmark programs (nats-server from the module). Row 6 runs the
# Kubernetes engineer's BenchmarkKubernetesScaleUp when it exists, and
# row 6b BenchmarkTiersScaleUp (Docker and the control plane).
#
# A number never fails this script: a missed target is a result. It exits
# non-zero only when a benchmark program itself breaks (after writing the
# table). BENCH_ROWS selects rows (default "0 1 2 3 4 5 6 7 8"; rows 1 and 3 come
# from one program); the results of rows not run are kept from the last run.
#
# Row 7 (HA failover) runs internal/hae2e's TestFailoverBench: nats-server
# from .cache/tools (`make tools`, or built on the spot) and a Docker
# engine. Row 8 (the steady-state cost of HA) runs bench/hacost, all in
# one process.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
BIN=$OUT/bin
ROWS=" ${BENCH_ROWS:-0 1 2 3 4 5 6 7 8} "
RUN_ID="$(date +%s)-$$"
mkdir -p "$OUT" "$BIN"
status=0

want() { [[ "$ROWS" == *" $1 "* ]]; }
note() { printf '\n=== %s (load %s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2; }

# Every container this run creates carries one of these labels; remove
# whatever is left, however the script ends.
cleanup() {
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
		for label in "hodei.bench.run=$RUN_ID" "hodei.autoscaler=hodei-bench-$RUN_ID"; do
			ids=$(docker ps -aq --filter "label=$label")
			[ -n "$ids" ] && docker rm -f $ids >/dev/null
		done
	fi
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

note "building the benchmark programs"
go build -o "$BIN/" ./bench/stream ./bench/reaction ./bench/dockerscale ./bench/growth ./bench/decodefold ./bench/hacost ./bench/report || exit 1

if want 0; then
	note "row 0: ledger fold"
	rm -f "$OUT/fold.txt"
	GOMAXPROCS=1 go test -run '^$' -bench 'Fold$' -benchmem -cpu 1 -count 5 \
		./internal/engine/ ./bench/fold/ >"$OUT/fold.txt" 2>&1 || { cat "$OUT/fold.txt" >&2; status=1; }
	note "row 0b: instructions per event, decode and fold (callgrind; row not run without valgrind)"
	rm -f "$OUT/decodefold.json"
	"$BIN/decodefold" -callgrind "$OUT/decodefold.json" -events 20000 -reps 3 || status=1
	note "row 0bh: the same for the hodei-jobs input's decode"
	rm -f "$OUT/decodefold-hodei.json"
	"$BIN/decodefold" -callgrind "$OUT/decodefold-hodei.json" -events 20000 -reps 3 -hodei || status=1
fi

if want 1 || want 3; then
	note "rows 1 and 3: ingest and recovery (1M events)"
	rm -f "$OUT/stream.json"
	"$BIN/stream" -out "$OUT/stream.json" || status=1
fi

if want 2; then
	note "row 2: reaction"
	rm -f "$OUT/reaction.json"
	"$BIN/reaction" -out "$OUT/reaction.json" || status=1
fi

if want 7; then
	note "row 7: HA failover (kill -9 of the holder → the new holder's first provider call)"
	rm -f "$OUT/failover.txt"
	# REQUIRE_*: a missing engine or nats-server is a failure here, which
	# the row reports, not a silent skip.
	HA_BENCH=1 HA_BENCH_TRIALS="${HA_BENCH_TRIALS:-20}" REQUIRE_DOCKER=1 REQUIRE_TOOLS=1 \
		go test ./internal/hae2e -run '^TestFailoverBench$' -v -count=1 -timeout 60m >"$OUT/failover.txt" 2>&1 || status=1
fi

if want 8; then
	note "row 8: steady-state cost of HA (3 replicas on a 3-node cluster vs one daemon on one server)"
	rm -f "$OUT/hacost.json"
	"$BIN/hacost" -out "$OUT/hacost.json" || status=1
fi

if want 5; then
	note "row 5: growth"
	rm -f "$OUT/growth.json"
	"$BIN/growth" -out "$OUT/growth.json" || status=1
fi

if want 4; then
	note "row 4: Docker 0 → 50 → 0 (after row 5: the engine's clean-up of its 300 containers loads the machine for a while)"
	rm -f "$OUT/docker.json"
	if docker info >/dev/null 2>&1; then
		make --no-print-directory worker-image WORKER_IMAGE=hodei-worker:dev >&2 || status=1
	fi
	# Without an engine the program records the row as not run.
	"$BIN/dockerscale" -run-id "$RUN_ID" -image hodei-worker:dev -parallel "${BENCH_DOCKER_PARALLEL:-4,8,16,50}" \
		-out "$OUT/docker.json" || status=1
fi

if want 6; then
	note "row 6: Kubernetes 0 → 200 pods"
	rm -f "$OUT/k8s.txt" "$OUT/k8s.rc"
	pkg=""
	for d in internal/providers/kubernetes bench/k8s; do
		if grep -qs 'func BenchmarkKubernetesScaleUp' "$d"/*_test.go; then
			pkg="./$d/"
			break
		fi
	done
	if [ -z "$pkg" ]; then
		echo "not run: BenchmarkKubernetesScaleUp does not exist yet (looked in internal/providers/kubernetes and bench/k8s)" >"$OUT/k8s.txt"
	elif ! ./tools/k8s/build.sh >&2; then
		echo "not run: building the control plane (tools/k8s/build.sh) failed" >"$OUT/k8s.txt"
	else
		# The benchmark's own output, kept whole; the report reads its
		# result lines and, if it failed, says why.
		REQUIRE_K8S=1 go test -run '^$' -bench BenchmarkKubernetesScaleUp -benchtime 1x -timeout 60m "$pkg" >"$OUT/k8s.txt" 2>&1
		echo $? >"$OUT/k8s.rc"
	fi
fi

if want 6; then
	note "row 6b: tiers, 0 → 30 workers on Docker then Kubernetes against Kubernetes alone"
	rm -f "$OUT/k8s-tiers.txt" "$OUT/k8s-tiers.rc"
	if ! docker info >/dev/null 2>&1; then
		echo "not run: no Docker engine (the Docker tier needs one)" >"$OUT/k8s-tiers.txt"
	elif ! ./tools/k8s/build.sh >&2; then
		echo "not run: building the control plane (tools/k8s/build.sh) failed" >"$OUT/k8s-tiers.txt"
	else
		REQUIRE_K8S=1 REQUIRE_DOCKER=1 go test -run '^$' -bench BenchmarkTiersScaleUp -benchtime 1x -timeout 40m ./internal/providers/kubernetes/ >"$OUT/k8s-tiers.txt" 2>&1
		echo $? >"$OUT/k8s-tiers.rc"
	fi
fi

note "writing the table"
"$BIN/report" -dir "$OUT" -results bench/results.md -benchmarks BENCHMARKS.md >/dev/null || exit 1
echo "wrote bench/results.md and BENCHMARKS.md" >&2
exit $status
