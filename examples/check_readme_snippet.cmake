# cmake -DREADME=<README.md> -DSNIPPET=<examples/08_readme.cpp> -P check_readme_snippet.cmake
#
# Fails unless README contains SNIPPET verbatim, so that the program the README shows is the one
# the tests compile and run.
file(READ "${README}" readme)
file(READ "${SNIPPET}" snippet)
string(FIND "${readme}" "${snippet}" position)
if(position EQUAL -1)
    message(FATAL_ERROR
        "${README} no longer shows ${SNIPPET} verbatim; copy the file into the README's first "
        "code example (or the other way round)")
endif()
message(STATUS "the README shows ${SNIPPET} verbatim")
