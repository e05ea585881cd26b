# Helpers that give every module the same shape: one library target per
# folder with explicit dependencies, so that an include of a module that is
# not a declared dependency fails to link.

include_guard(GLOBAL)

# Flags for Junction's own code (not for third-party headers).
# GCC 12 at -O2 (the tsan preset) reports the destruction of every Asio awaitable
# frame whose allocation it can see inlined as a mismatched new/delete: Asio's
# frame operator new (aligned_alloc through its recycling cache) and operator
# delete match, GCC just cannot pair them. A false positive that moves from
# file to file as inlining changes, so it is off for GCC everywhere rather
# than per file.
set(JUNCTION_WARNINGS -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wimplicit-fallthrough
    $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete> -Werror)

# junction_library(NAME core SRCS a.cc b.cc DEPS other_module PUBLIC_LIBS Foo::Foo
#                  PRIVATE_LIBS Bar::Bar)
# Defines target junction_<NAME> and alias junction::<NAME>. DEPS name other
# Junction modules (without prefix).
function(junction_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  set(target junction_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SRCS})
  add_library(junction::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                              ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${target} PRIVATE ${JUNCTION_WARNINGS})
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(${target} PUBLIC junction::${dep})
  endforeach()
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_LIBS} PRIVATE ${ARG_PRIVATE_LIBS})
endfunction()

# junction_test(NAME status_test SRCS status_test.cc DEPS core LABELS core
#               [CONCURRENT] [LIBS ...] [TIMEOUT s])
# A gtest binary; each TEST becomes a CTest test carrying LABELS. CONCURRENT
# tests are also built and run under ThreadSanitizer (preset tsan); in that
# configuration every other test is skipped.
function(junction_test)
  cmake_parse_arguments(ARG "CONCURRENT" "NAME;TIMEOUT" "SRCS;DEPS;LABELS;LIBS" ${ARGN})
  if(NOT BUILD_TESTING)
    return()
  endif()
  if(JUNCTION_SANITIZER STREQUAL "thread" AND NOT ARG_CONCURRENT)
    return()
  endif()
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "junction_test(${ARG_NAME}): every test needs LABELS")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # gtest_discover_tests (CMake 3.25) cannot pass a list-valued property, so
  # a test has exactly one label. CONCURRENT needs none: the tsan build holds
  # only CONCURRENT tests.
  list(LENGTH ARG_LABELS label_count)
  if(NOT label_count EQUAL 1)
    message(FATAL_ERROR "junction_test(${ARG_NAME}): give exactly one label")
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${JUNCTION_WARNINGS})
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(${ARG_NAME} PRIVATE junction::${dep})
  endforeach()
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS ${ARG_LABELS} TIMEOUT ${ARG_TIMEOUT})
endfunction()

# junction_fuzzer(NAME cloudevents_json_fuzz SRCS f.cc DEPS codec CORPUS dir
#                 [TEST_SECONDS 10])
# A libFuzzer binary (only with JUNCTION_FUZZ=ON, clang). Registers a CTest
# test labelled `fuzz` that runs it for TEST_SECONDS on a copy of the
# checked-in seed corpus, and adds it to the `fuzz` target that `make fuzz`
# drives.
function(junction_fuzzer)
  cmake_parse_arguments(ARG "" "NAME;CORPUS;TEST_SECONDS" "SRCS;DEPS" ${ARGN})
  if(NOT JUNCTION_FUZZ)
    return()
  endif()
  if(NOT ARG_TEST_SECONDS)
    set(ARG_TEST_SECONDS 10)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_compile_options(${ARG_NAME} PRIVATE ${JUNCTION_WARNINGS} -fsanitize=fuzzer)
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer)
  foreach(dep IN LISTS ARG_DEPS)
    target_link_libraries(${ARG_NAME} PRIVATE junction::${dep})
  endforeach()
  set(work ${CMAKE_BINARY_DIR}/fuzz-corpus/${ARG_NAME})
  add_test(NAME ${ARG_NAME}
    COMMAND ${CMAKE_COMMAND} -E env ${PROJECT_SOURCE_DIR}/scripts/run-fuzzer
            $<TARGET_FILE:${ARG_NAME}> ${ARG_TEST_SECONDS} ${work} ${ARG_CORPUS})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS fuzz TIMEOUT 600)
endfunction()
