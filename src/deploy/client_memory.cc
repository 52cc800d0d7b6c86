// keep_freed_memory_for_reuse (cohort/deploy/client.h).
#include <malloc.h>

#include "cohort/deploy/client.h"

namespace cohort::deploy {

void keep_freed_memory_for_reuse() {
  // Fixed thresholds also turn off glibc's dynamic mmap threshold, which would otherwise
  // follow the largest block freed so far.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace cohort::deploy
