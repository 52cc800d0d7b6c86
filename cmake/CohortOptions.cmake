# Build options. Heavy dependencies live only in their own targets (see docs/design/conventions.md).
option(COHORT_BUILD_TESTS "Build unit and integration tests" ON)
option(COHORT_WITH_TORCH "Build the LibTorch training backend" ON)
option(COHORT_WITH_GRPC "Build the gRPC deployment (cohort serve / cohort join)" ON)
option(COHORT_WITH_PYTHON "Build the Python module (pybind11; needs COHORT_WITH_TORCH)" ON)
option(COHORT_WERROR "Treat warnings as errors" OFF)
set(COHORT_SANITIZE "" CACHE STRING "Sanitizers, e.g. address;undefined or thread")
option(COHORT_FUZZ "Build the libFuzzer targets of fuzz/ (clang; make fuzz)" OFF)

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

# Warnings for Cohort's own targets.
add_library(cohort_warnings INTERFACE)
# Options structs are built with designated initialisers that name only what differs from the
# defaults (docs/design/conventions.md), which -Wmissing-field-initializers would flag.
target_compile_options(cohort_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter
                                                 -Wno-missing-field-initializers)
if(COHORT_WERROR)
  target_compile_options(cohort_warnings INTERFACE -Werror)
endif()
if(COHORT_FUZZ)
  # Coverage instrumentation for libFuzzer in every library; the fuzz executables add
  # -fsanitize=fuzzer (fuzz/CMakeLists.txt).
  list(APPEND COHORT_SANITIZE fuzzer-no-link)
endif()
if(COHORT_SANITIZE)
  string(REPLACE ";" "," _san "${COHORT_SANITIZE}")
  add_compile_options(-fsanitize=${_san} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${_san})
  if("undefined" IN_LIST COHORT_SANITIZE)
    # Undefined behaviour fails the test instead of printing a line and going on.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
