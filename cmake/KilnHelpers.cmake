# kiln_cc_library(NAME core SRCS a.cc b.cc DEPS kiln::x [PRIVATE_DEPS y])
# Produces kiln_<name> with alias kiln::<name>; src/ is its public include root.
function(kiln_cc_library)
  cmake_parse_arguments(K "" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(kiln_${K_NAME} STATIC ${K_SRCS})
  add_library(kiln::${K_NAME} ALIAS kiln_${K_NAME})
  target_include_directories(kiln_${K_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(kiln_${K_NAME} PUBLIC ${K_DEPS} PRIVATE kiln_options ${K_PRIVATE_DEPS})
  target_compile_features(kiln_${K_NAME} PUBLIC cxx_std_20)
endfunction()

# kiln_cc_test(NAME core_test SRCS a_test.cc DEPS kiln::core [LABELS unit])
# One GoogleTest binary per library, discovered before each run.
function(kiln_cc_test)
  cmake_parse_arguments(K "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT KILN_BUILD_TESTS)
    return()
  endif()
  add_executable(${K_NAME} ${K_SRCS})
  target_link_libraries(${K_NAME} PRIVATE kiln_options kiln::testing ${K_DEPS}
    GTest::gmock GTest::gtest_main)
  if(NOT K_LABELS)
    set(K_LABELS unit)
  endif()
  gtest_discover_tests(${K_NAME} DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${K_LABELS}" ENVIRONMENT "KILN_SOURCE_DIR=${PROJECT_SOURCE_DIR};KILN_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()

# kiln_cc_binary(NAME kiln-edge SRCS main.cc DEPS ...)
function(kiln_cc_binary)
  cmake_parse_arguments(K "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${K_NAME} ${K_SRCS})
  target_link_libraries(${K_NAME} PRIVATE kiln_options ${K_DEPS})
  target_compile_definitions(${K_NAME} PRIVATE KILN_VERSION="${PROJECT_VERSION}")
endfunction()
