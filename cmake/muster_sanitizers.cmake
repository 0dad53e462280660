# Applies MUSTER_SANITIZE to everything muster builds (library, tests, examples, benchmarks).
#
# MUSTER_SANITIZE is a comma-separated list passed to -fsanitize=, in practice
# "address,undefined" or "thread". The flags are added to the directory's compile and link
# options, so they cover every target below this directory, and they are kept in
# MUSTER_SANITIZER_FLAGS (a space-separated string) for builds that must match, such as the
# packaging tests' consumer projects.
set(MUSTER_SANITIZER_FLAGS "")

if(NOT MUSTER_SANITIZE)
    return()
endif()

if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "muster: MUSTER_SANITIZE needs GCC or Clang, not ${CMAKE_CXX_COMPILER_ID}")
endif()

string(REPLACE "," ";" _muster_sanitizers "${MUSTER_SANITIZE}")
foreach(_s IN LISTS _muster_sanitizers)
    if(NOT _s MATCHES "^(address|undefined|leak|thread)$")
        message(FATAL_ERROR "muster: unknown sanitizer '${_s}' in MUSTER_SANITIZE='${MUSTER_SANITIZE}'")
    endif()
endforeach()
if("thread" IN_LIST _muster_sanitizers AND
   ("address" IN_LIST _muster_sanitizers OR "leak" IN_LIST _muster_sanitizers))
    message(FATAL_ERROR "muster: ThreadSanitizer cannot be combined with Address/LeakSanitizer")
endif()

set(_muster_sanitize_flags -fsanitize=${MUSTER_SANITIZE} -fno-omit-frame-pointer)
if("undefined" IN_LIST _muster_sanitizers)
    # Make every UBSan finding fatal, so a test cannot pass with undefined behaviour in it.
    list(APPEND _muster_sanitize_flags -fno-sanitize-recover=all)
endif()

add_compile_options(${_muster_sanitize_flags})
add_link_options(${_muster_sanitize_flags})

list(JOIN _muster_sanitize_flags " " MUSTER_SANITIZER_FLAGS)
message(STATUS "muster: sanitizers enabled: ${MUSTER_SANITIZER_FLAGS}")

unset(_s)
unset(_muster_sanitizers)
unset(_muster_sanitize_flags)
