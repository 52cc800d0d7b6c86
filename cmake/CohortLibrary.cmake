# cohort_add_library(<name> SOURCES <files...> [DEPS <targets...>] [PRIVATE_DEPS <targets...>])
# One static library per folder of src/ (docs/design/architecture.md has the dependency
# diagram). DEPS are the Cohort libraries (and light third-party ones) whose headers this
# library's public headers include; PRIVATE_DEPS stay out of users' include paths (LibTorch,
# gRPC, yaml-cpp). Defines the alias cohort::<name without the cohort_ prefix>.
function(cohort_add_library name)
  cmake_parse_arguments(L "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${L_SOURCES})
  string(REPLACE "cohort_" "" _short ${name})
  add_library(cohort::${_short} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                     PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${L_DEPS} PRIVATE ${L_PRIVATE_DEPS} cohort_warnings)
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
