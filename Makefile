# The two commands of the README:
#   make run   - install packages, release build, run the main job
#   make test  - install packages, debug build (ASan+UBSan), every test,
#                TSan run of the concurrent tests, fuzz smoke runs, format and lint checks
# Other targets: build, release, tsan, fuzz (60 s per target), format, lint, clean.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
JOBS ?= 2
FUZZ_SECONDS ?= 60

.PHONY: setup build release run test unit tsan fuzz-smoke fuzz soak format format-check lint clean

setup:
	@scripts/setup

build: setup
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug -j $(JOBS)

release: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Until the reference system lands, the main job is junctiond in the
# foreground, on a data directory under the build folder (Ctrl-C stops it).
run: release
	@build/release/apps/junction/junction version
	@build/release/apps/junction/junction broker --data-dir build/release/junction-data \
		--admin 127.0.0.1:7523

unit: build
	@ctest --preset debug

tsan: setup
	@cmake --preset tsan >/dev/null
	@cmake --build --preset tsan -j $(JOBS)
	@ctest --preset tsan

fuzz-smoke: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@ctest --preset fuzz

# Longer fault runs than `make test` has time for: the slow consumer for
# 60 s, the kill -9 test three times over.
soak: build
	@SOAK_SECONDS=60 ctest --preset debug -R DaemonSlowConsumerTest --output-on-failure -V \
		| grep -E "published|Passed|Failed"
	@ctest --preset debug -R DaemonKillTest --repeat until-fail:3 --output-on-failure | tail -3

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@scripts/fuzz-all build/fuzz $(FUZZ_SECONDS)

format:
	@scripts/format --fix

format-check:
	@scripts/format --check

lint: build
	@scripts/lint build/debug

test: format-check unit tsan fuzz-smoke lint
	@echo "make test: all stages passed"

clean:
	@rm -rf build
