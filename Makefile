# Cohort: the README's two commands (make demo, make test) and friends.
# Every target that builds first runs scripts/install-deps.sh, so a fresh machine needs
# nothing else.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: all deps configure build test demo bench clean test-asan test-tsan fuzz

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: build
	bash scripts/demo.sh $(BUILD_DIR)

bench: build
	bash bench/run.sh $(BUILD_DIR)

# Sanitizer suites (CMakePresets.json): every test that does not need LibTorch, built with
# AddressSanitizer + UndefinedBehaviorSanitizer, or with ThreadSanitizer
# (docs/design/testing.md says which tests are left out and why).
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) --timeout 900

test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) --timeout 900

# libFuzzer (clang) on every parser of outside input, FUZZ_SECONDS each (default 60);
# findings land in build-fuzz/findings/ and fail the target.
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz
