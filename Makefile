# Thin wrapper over the CMake presets (see CMakePresets.json).
#
#   make test    build (preset dev) and run the test suite
#   make demo    build (preset release) and run every example
#   make bench   build (preset bench) and run the benchmarks (BENCH_ARGS="--quick --reps 1"
#                for a smoke run; see bench/README.md)
#   make asan    build and test with AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan    build and test with ThreadSanitizer
#   make deps    install the Debian packages the build needs
#   make clean   remove build/

JOBS ?= 2
# Extra arguments for bench/run.py, e.g. BENCH_ARGS="--workloads W1,W5 --reps 3".
BENCH_ARGS ?=
MAKEFLAGS += --no-print-directory
# Prefix for the ThreadSanitizer test run, e.g. TSAN_WRAP='setarch x86_64 -R' on kernels
# where TSan needs less address-space randomisation.
TSAN_WRAP ?=

DEPS := g++ cmake make libgtest-dev libgmock-dev libcurl4-openssl-dev libcpp-httplib-dev \
        pkg-config libcereal-dev clang libclang-rt-dev
BENCH_DEPS := $(DEPS) libbenchmark-dev libtbb-dev libboost-dev python3 python3-matplotlib

.PHONY: all demo test bench bench-run asan tsan deps bench-deps clean

all: test

deps:
	@scripts/ensure-deps.sh $(DEPS)

bench-deps:
	@scripts/ensure-deps.sh $(BENCH_DEPS)

test: deps
	cmake --preset dev
	cmake --build --preset dev -j $(JOBS)
	ctest --preset dev

demo: deps
	cmake --preset release
	cmake --build --preset release -j $(JOBS) --target muster_examples
	scripts/demo.sh build/release

asan: export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1
asan: export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan

tsan: export TSAN_OPTIONS ?= halt_on_error=1 second_deadlock_stack=1
tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	$(TSAN_WRAP) ctest --preset tsan

bench: bench-deps
	@if [ ! -f bench/CMakeLists.txt ]; then echo "bench/ not present yet"; exit 1; fi
	cmake --preset bench
	cmake --build --preset bench -j $(JOBS)
	$(MAKE) -C . bench-run

bench-run:
	@if [ -f bench/run.py ]; then \
	    python3 bench/run.py $(BENCH_ARGS); \
	elif [ -x build/bench/bench/muster_bench_driver ]; then \
	    build/bench/bench/muster_bench_driver; \
	else \
	    echo "bench/ not present yet"; exit 1; \
	fi

clean:
	rm -rf build
