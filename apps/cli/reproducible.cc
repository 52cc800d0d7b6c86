#include "reproducible.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/torch/torch_trainer.h"

namespace cohort::cli {

namespace {

std::vector<char*> g_argv;

// The pins: Haswell-class kernels (AVX2 + FMA), which every x86-64 CPU since 2013 (Intel
// Haswell, AMD Excavator / Zen) runs, whatever wider kernels it would pick by itself.
struct Pin {
  const char* name;
  const char* value;
};
constexpr Pin kPins[] = {
    {"OPENBLAS_CORETYPE", "Haswell"},  // OpenBLAS DYNAMIC_ARCH: the sgemm/sgemv kernels
    {"ATEN_CPU_CAPABILITY", "avx2"},   // ATen's vectorised CPU kernels (not avx512)
    {"OPENBLAS_NUM_THREADS", "1"},     // one BLAS thread: no split of a product's work
};
// Set in the re-executed process: a second re-execution would be a loop.
constexpr const char* kReexecMark = "COHORT_REPRODUCIBLE_REEXEC";

bool pinned() {
  for (const Pin& p : kPins) {
    const char* v = std::getenv(p.name);
    if (v == nullptr || std::strcmp(v, p.value) != 0) return false;
  }
  return true;
}

std::string pins_text(const char* sep) {
  std::string s;
  for (const Pin& p : kPins) {
    if (!s.empty()) s += sep;
    s += std::string(p.name) + "=" + p.value;
  }
  return s;
}

}  // namespace

void remember_process_args(int argc, char** argv) { g_argv.assign(argv, argv + argc); }

Status apply_reproducibility(const RunConfig& run) {
  if (run.reproducible != "strict") return Status();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    return Status::failed_precondition(
        "run.reproducible: strict pins Haswell-class math kernels (AVX2 and FMA), which this "
        "CPU does not have; use run.reproducible: default here");
  }
#else
  return Status::failed_precondition(
      "run.reproducible: strict is for x86-64 machines (it pins x86-64 kernels)");
#endif
  if (!pinned()) {
    if (std::getenv(kReexecMark) != nullptr) {
      return Status::internal("run.reproducible: strict: the kernel pins (" + pins_text(", ") +
                              ") did not survive re-executing the process");
    }
    if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_RANK") != nullptr) {
      // Re-executing an MPI rank would leave mpirun's bookkeeping behind.
      std::string flags;
      for (const Pin& p : kPins) flags += std::string(" -x ") + p.name + "=" + p.value;
      return Status::failed_precondition(
          "run.reproducible: strict under mpirun needs the kernel pins in every rank's "
          "environment before it starts: add" +
          flags + " to the mpirun command");
    }
    if (g_argv.empty()) {
      return Status::internal("run.reproducible: strict: the process arguments are unknown");
    }
    for (const Pin& p : kPins) ::setenv(p.name, p.value, /*overwrite=*/1);
    ::setenv(kReexecMark, "1", 1);
    std::vector<char*> args = g_argv;
    args.push_back(nullptr);
    std::fflush(nullptr);
    ::execv("/proc/self/exe", args.data());
    return Status::internal(std::string("run.reproducible: strict: cannot re-execute with ") +
                            pins_text(" ") + ": " + std::strerror(errno));
  }
  libtorch::set_deterministic(true);
  return Status();
}

}  // namespace cohort::cli
