// Thread settings and BLAS detection for the LibTorch backend. Includes only ATen/Parallel.h
// (cheap to compile), not the nn or optim headers.
#include <dlfcn.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <string>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "cohort/torch/torch_trainer.h"

namespace cohort::libtorch {

void set_deterministic(bool on) {
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
}

void set_torch_threads(int n) {
  n = std::max(n, 1);
  // With the OpenMP backend this sets the calling thread's OpenMP team size and a global
  // that every other thread picks up on its first parallel region
  // (at::internal::lazy_init_num_threads).
  at::set_num_threads(n);
  // LibTorch throws if the inter-op pool is sized twice or after it started; Cohort never
  // uses inter-op parallelism, so size it on the first call only and ignore failures.
  static std::once_flag interop_once;
  std::call_once(interop_once, [n] {
    try {
      at::set_num_interop_threads(n);
    } catch (const std::exception&) {
    }
  });
  // Debian's LibTorch calls the system BLAS (libblas.so.3), which does not follow
  // at::set_num_threads. OpenBLAS has its own pool; its setter is process-wide.
  using SetThreads = void (*)(int);
  if (auto* fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(n);
  }
}

std::string blas_library() {
  // Which libblas.so.3 the dynamic loader mapped says which BLAS LibTorch calls: Debian's
  // alternatives put each implementation in its own directory.
  std::string path;
  {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line)) {
      const size_t slash = line.find('/');
      if (slash == std::string::npos) continue;
      const std::string p = line.substr(slash);
      if (p.find("/libblas.so") != std::string::npos || p.find("/libmkl_rt") != std::string::npos) {
        path = p;
        break;
      }
    }
  }
  std::string kind;
  if (path.empty()) {
    kind = "unknown (no libblas.so mapped)";
  } else if (path.find("openblas-pthread") != std::string::npos) {
    kind = "openblas-pthread";
  } else if (path.find("openblas-openmp") != std::string::npos) {
    kind = "openblas-openmp";
  } else if (path.find("openblas-serial") != std::string::npos) {
    kind = "openblas-serial";
  } else if (path.find("/blas/") != std::string::npos) {
    kind = "reference";
  } else if (path.find("blis") != std::string::npos) {
    kind = "blis";
  } else if (path.find("atlas") != std::string::npos) {
    kind = "atlas";
  } else if (path.find("mkl") != std::string::npos) {
    kind = "mkl";
  } else {
    kind = "other (" + path + ")";
  }
  if (kind.rfind("openblas", 0) == 0) {
    using GetConfig = char* (*)();
    if (auto* fn = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
      std::string config = fn();
      while (!config.empty() && config.back() == ' ') config.pop_back();
      kind += " (" + config + ")";
    }
  }
  return kind;
}

}  // namespace cohort::libtorch
