#!/usr/bin/env bash
# Installs every Debian package Cohort needs to build, test, benchmark and run its demo.
# Idempotent: when every package is already installed it returns at once without apt-get.
# Must run as root (or with sudo available). Only Debian's archive is used.
set -euo pipefail

PACKAGES=(
  # build tools
  build-essential g++ cmake ninja-build ccache pkg-config git
  # training backend: LibTorch (C++) and OpenBLAS (without it LibTorch uses reference BLAS, 2-5x slower)
  libtorch-dev libopenblas0-pthread
  # deployment: gRPC + protobuf
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # TLS certificates for deployments and the integration tests (scripts/make-certs.sh)
  openssl
  # core libraries
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  zlib1g-dev libzstd-dev libsodium-dev
  # CRC-32 of wire streams, codec frames and spool files at memory speed (ISA-L: PCLMUL)
  libisal-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # fuzzing (make fuzz): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # data
  dataset-fashion-mnist
  # text for the character-level language model (data.dataset: text): one source per file,
  # topics and languages differ (a natural non-IID split)
  fortunes fortunes-min fortunes-de fortunes-es fortunes-it
  # python: bindings and baselines (Debian's python3, not a pyenv one)
  python3 python3-dev python3-numpy python3-torch pybind11-dev python3-grpcio python3-protobuf
  python3-pytest python3-pip python3-setuptools python3-wheel
  # live dashboard (cohort serve/simulate --dashboard): HTTP server library; its end-to-end test
  # drives headless Chromium through Selenium
  libcpp-httplib-dev chromium chromium-driver python3-selenium
  # simulations spread over processes and hosts (mpirun -np N cohort simulate; docs/design/mpi.md)
  openmpi-bin libopenmpi-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
