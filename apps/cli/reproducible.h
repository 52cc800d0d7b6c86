// `run.reproducible: strict` (docs/design/reproducibility.md): the same model hash on every
// x86-64 machine for a seed. What varies between machines is which kernels the math libraries
// pick for the CPU they find: OpenBLAS's sgemm (OPENBLAS_CORETYPE) and ATen's vectorised
// kernels (ATEN_CPU_CAPABILITY). Both read their choice when they load, so strict mode pins
// them in the environment and re-executes the process before any model exists.
#pragma once

#include "cohort/core/status.h"
#include "cohort/runtime/run_config.h"

namespace cohort::cli {

// Remembers the process's arguments (main() calls it first) for a re-execution.
void remember_process_args(int argc, char** argv);

// Under `run.reproducible: strict`: returns at once when the pins are in place (and turns on
// LibTorch's deterministic algorithms); otherwise sets them and re-executes the process with
// the same arguments (does not return). Errors: FailedPrecondition when the CPU lacks the
// pinned kernels' instructions (AVX2 and FMA), or under mpirun without the pins exported
// (the error says which `mpirun -x` to add); Internal when the re-execution fails. Under
// `default` it does nothing.
Status apply_reproducibility(const RunConfig& run);

}  // namespace cohort::cli
