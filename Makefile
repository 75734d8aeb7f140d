# The project's front door. `make demo` and `make test` work from a fresh clone on
# Debian 12: they install what is missing (scripts/install-deps.sh), build, and run.

BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
CTEST_ARGS ?=
FUZZ_SECONDS ?= 60

.PHONY: all deps build test unit e2e demo bench peers scale durability-cost fuzz asan tsan clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

## Every test: unit tests, then the end-to-end tests on real processes (PostgreSQL started
## by scripts/with-postgres.sh for the store tests).
test: build
	bash scripts/with-postgres.sh ctest --test-dir $(BUILD) --output-on-failure -j 2 $(CTEST_ARGS)

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit $(CTEST_ARGS)

e2e: build
	ctest --test-dir $(BUILD) --output-on-failure -L e2e $(CTEST_ARGS)

## The seed's session: a server, three workers, and the interactive client.
demo: build
	bash scripts/demo.sh $(BUILD)/bin

## A short standard set of sd-bench runs, one table.
bench: build
	bash scripts/bench.sh $(BUILD)/bin

## Side by side with gearmand, beanstalkd and the Python seed (../shared/peers). The peers
## keep their queues in memory, so ours does too (SD_STORE=sqlite:... to compare durable).
peers: build
	bash scripts/install-deps.sh --peers
	SD_STORE=$${SD_STORE:-memory} SD_BIN=$(BUILD)/bin ../shared/peers/run_peers.sh

## Throughput as workers (1-48) and client connections (1-200) grow.
scale: build
	python3 scripts/scale.py --bin $(BUILD)/bin

## The cost of durability: cliente batch with the SQLite store against memory, side by side.
durability-cost: build
	python3 scripts/durability_cost.py --bin $(BUILD)/bin

## libFuzzer on the framing and message decoding (clang), for FUZZ_SECONDS.
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSD_FUZZ=ON \
	  -DSD_BUILD_BENCH=OFF -DSD_BUILD_EXAMPLES=OFF -DSD_BUILD_TESTS=ON
	cmake --build build-fuzz --target fuzz_decoder -j $(JOBS)
	bash tests/fuzz/run.sh build-fuzz/bin/fuzz_decoder $(FUZZ_SECONDS)

## The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSD_SANITIZE=address,undefined -DSD_BUILD_BENCH=ON
	cmake --build build-asan -j $(JOBS)
	SD_TEST_SLOWDOWN=4 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  bash scripts/with-postgres.sh ctest --test-dir build-asan --output-on-failure -j 2 $(CTEST_ARGS)

## The worker pool and the server core under ThreadSanitizer.
tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSD_SANITIZE=thread \
	  -DSD_BUILD_BENCH=OFF -DSD_BUILD_EXAMPLES=OFF
	cmake --build build-tsan -j $(JOBS)
	SD_TEST_SLOWDOWN=8 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest --test-dir build-tsan --output-on-failure -j 2 -L tsan $(CTEST_ARGS)

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
