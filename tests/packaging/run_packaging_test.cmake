# Builds and runs one packaging consumer, run as cmake -P with:
#   MODE               find_package: install MUSTER_BINARY_DIR into a prefix under WORK_DIR,
#                      then build consumer/ against it with CMAKE_PREFIX_PATH and run its
#                      consumer (muster::muster) and process_consumer (muster::process);
#                      add_subdirectory: build subdir_consumer/ with muster's sources inside it
#   MUSTER_SOURCE_DIR  muster's source tree
#   MUSTER_BINARY_DIR  muster's build tree (find_package mode)
#   WORK_DIR           scratch directory, emptied first
#   GENERATOR, CXX_COMPILER, CXX_FLAGS, LINKER_FLAGS, BUILD_TYPE
#                      passed to the consumer so it matches the build under test (sanitizers)

foreach(var MODE MUSTER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "run_packaging_test.cmake: -D${var}=... is required")
    endif()
endforeach()

function(run_step)
    string(REPLACE ";" " " printable "${ARGN}")
    message(STATUS "+ ${printable}")
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "step failed (${result}): ${printable}")
    endif()
endfunction()

set(packaging_dir "${MUSTER_SOURCE_DIR}/tests/packaging")
set(build_dir "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(configure_args
    -G "${GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
    "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)

if(MODE STREQUAL "find_package")
    if(NOT DEFINED MUSTER_BINARY_DIR)
        message(FATAL_ERROR "run_packaging_test.cmake: -DMUSTER_BINARY_DIR=... is required")
    endif()
    set(prefix "${WORK_DIR}/prefix")
    set(install_args --install "${MUSTER_BINARY_DIR}" --prefix "${prefix}")
    if(BUILD_TYPE)
        list(APPEND install_args --config "${BUILD_TYPE}")
    endif()
    run_step("${CMAKE_COMMAND}" ${install_args})
    run_step("${CMAKE_COMMAND}" -S "${packaging_dir}/consumer" -B "${build_dir}"
        ${configure_args} "-DCMAKE_PREFIX_PATH=${prefix}")

    # The consumer must have found the package just installed, not one elsewhere on the system.
    file(STRINGS "${build_dir}/CMakeCache.txt" found_dir REGEX "^muster_DIR:")
    string(REGEX REPLACE "^muster_DIR:[A-Z]+=" "" found_dir "${found_dir}")
    file(REAL_PATH "${found_dir}" found_dir)
    file(REAL_PATH "${prefix}" real_prefix)
    string(FIND "${found_dir}" "${real_prefix}/" at)
    if(NOT at EQUAL 0)
        message(FATAL_ERROR "consumer found muster in ${found_dir}, not under ${real_prefix}")
    endif()
elseif(MODE STREQUAL "add_subdirectory")
    run_step("${CMAKE_COMMAND}" -S "${packaging_dir}/subdir_consumer" -B "${build_dir}"
        ${configure_args} "-DMUSTER_SOURCE_DIR=${MUSTER_SOURCE_DIR}")

    # As a subproject, muster must not add its tests or examples to the parent's build.
    foreach(dir tests examples)
        if(EXISTS "${build_dir}/muster-build/${dir}")
            message(FATAL_ERROR "muster configured its ${dir}/ as a subproject")
        endif()
    endforeach()
else()
    message(FATAL_ERROR "run_packaging_test.cmake: unknown MODE '${MODE}'")
endif()

run_step("${CMAKE_COMMAND}" --build "${build_dir}" --parallel 2)
run_step("${build_dir}/consumer")
if(MODE STREQUAL "find_package")
    # muster::process from the installed package: a registered task run in worker processes.
    run_step("${build_dir}/process_consumer")
endif()
