# muster_add_test(NAME <name> LABEL <label> SOURCES <file>... [LIBS <lib>...] [TIMEOUT <seconds>]
#                 [NO_GTEST_MAIN])
#
# Builds the GoogleTest executable <name> from SOURCES, links it with muster::muster,
# GTest::gtest, GTest::gtest_main (unless NO_GTEST_MAIN: SOURCES then provide main) and LIBS, and registers each of its test cases with CTest as
# "<label>.<Suite>.<Case>", labelled <label>. Every test case gets a timeout (TIMEOUT, 120 s by
# default), so a deadlock fails the test instead of hanging the run. Test cases are listed when
# CTest runs (DISCOVERY_MODE PRE_TEST), so sanitizer builds never run test binaries at build time.
#
# tests/support/ is on every test's include path; any tests/support/*.cpp files are compiled
# once into muster_test_support and linked into every test.
#
# Stress tests scale their work with the environment variable MUSTER_STRESS_SCALE. Tests must
# run without it. CTest passes the caller's environment through, so
# `MUSTER_STRESS_SCALE=4 ctest ...` works; setting the cache variable MUSTER_STRESS_SCALE bakes
# a value into the registered tests instead.

set(MUSTER_STRESS_SCALE "" CACHE STRING
    "If set, exported as MUSTER_STRESS_SCALE to every test (stress tests scale their work by it)")

set(_muster_test_support_dir "${muster_SOURCE_DIR}/tests/support")

function(_muster_test_support_target out_var)
    if(NOT TARGET muster_test_support)
        file(GLOB _support_sources CONFIGURE_DEPENDS "${_muster_test_support_dir}/*.cpp")
        if(_support_sources)
            add_library(muster_test_support STATIC ${_support_sources})
            target_include_directories(muster_test_support PUBLIC "${_muster_test_support_dir}")
            target_link_libraries(muster_test_support PUBLIC muster::muster GTest::gtest)
            set_target_properties(muster_test_support PROPERTIES CXX_EXTENSIONS OFF)
            muster_set_warnings(muster_test_support)
        else()
            add_library(muster_test_support INTERFACE)
            target_include_directories(muster_test_support INTERFACE "${_muster_test_support_dir}")
        endif()
    endif()
    set(${out_var} muster_test_support PARENT_SCOPE)
endfunction()

function(muster_add_test)
    cmake_parse_arguments(PARSE_ARGV 0 arg "NO_GTEST_MAIN" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS")
    if(arg_UNPARSED_ARGUMENTS)
        message(FATAL_ERROR "muster_add_test: unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
    endif()
    foreach(required NAME LABEL SOURCES)
        if(NOT arg_${required})
            message(FATAL_ERROR "muster_add_test: ${required} is required")
        endif()
    endforeach()
    if(NOT arg_TIMEOUT)
        set(arg_TIMEOUT 120)
    endif()

    _muster_test_support_target(support)

    set(gtest_main GTest::gtest_main)
    if(arg_NO_GTEST_MAIN)
        set(gtest_main "")
    endif()

    add_executable(${arg_NAME} ${arg_SOURCES})
    target_link_libraries(${arg_NAME} PRIVATE
        muster::muster ${support} GTest::gtest ${gtest_main} ${arg_LIBS})
    set_target_properties(${arg_NAME} PROPERTIES CXX_EXTENSIONS OFF)
    muster_set_warnings(${arg_NAME})

    set(properties LABELS ${arg_LABEL} TIMEOUT ${arg_TIMEOUT})
    if(NOT MUSTER_STRESS_SCALE STREQUAL "")
        list(APPEND properties ENVIRONMENT "MUSTER_STRESS_SCALE=${MUSTER_STRESS_SCALE}")
    endif()

    gtest_discover_tests(${arg_NAME}
        TEST_PREFIX "${arg_LABEL}."
        DISCOVERY_MODE PRE_TEST
        DISCOVERY_TIMEOUT 60
        PROPERTIES ${properties})
endfunction()
