// COHORT_MULTIVERSION: compile a hot loop twice (AVX2+FMA and baseline x86-64) and let the
// loader pick one (GCC target_clones). Off under clang and under ThreadSanitizer: the loader
// runs the (instrumented) ifunc resolvers before the TSan runtime is initialised, which crashes
// at start-up.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__)
#define COHORT_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define COHORT_MULTIVERSION
#endif
