# Compile-failure check, run as
#   cmake -DCXX_COMPILER=<c++> -DSOURCE=<file.cpp> -DINCLUDE_DIRS=<dir;dir> -P check.cmake
#
# Passes when compiling SOURCE (C++20, syntax only) fails AND the compiler's output matches the
# regular expression given on the first line of SOURCE:
#   // expect-error: <CMake regular expression>
# Matching the message guards against a test that fails to compile for an unrelated reason
# (a typo, a missing include) and so passes without testing anything.

foreach(var CXX_COMPILER SOURCE)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check.cmake: -D${var}=... is required")
    endif()
endforeach()

file(READ "${SOURCE}" contents)
string(REGEX MATCH "^[^\n]*" first_line "${contents}")
string(STRIP "${first_line}" first_line)
if(NOT first_line MATCHES "^// expect-error:[ \t]*(.+)$")
    message(FATAL_ERROR
        "${SOURCE}: the first line must be `// expect-error: <regex>`, found: ${first_line}")
endif()
set(expected "${CMAKE_MATCH_1}")

set(include_flags "")
foreach(dir IN LISTS INCLUDE_DIRS)
    if(NOT dir STREQUAL "")
        list(APPEND include_flags "-I${dir}")
    endif()
endforeach()

execute_process(
    COMMAND "${CXX_COMPILER}" -std=c++20 -fsyntax-only ${include_flags} "${SOURCE}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)

if(result EQUAL 0)
    message(FATAL_ERROR "${SOURCE} compiled, but it must not compile (expected: ${expected})")
endif()
if(NOT output MATCHES "${expected}")
    message(FATAL_ERROR
        "${SOURCE} failed to compile, but no diagnostic matches `${expected}`.\n"
        "Compiler output:\n${output}")
endif()
message(STATUS "${SOURCE}: did not compile, as expected (matched `${expected}`)")
