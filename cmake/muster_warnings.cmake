# muster_set_warnings(<target>)
#
# Adds muster's warning flags to <target> as PRIVATE compile options, so they apply to muster's
# own code and never leak to consumers. With MUSTER_WARNINGS_AS_ERRORS, warnings fail the build.
function(muster_set_warnings target)
    if(MSVC)
        set(flags /W4 /permissive-)
        if(MUSTER_WARNINGS_AS_ERRORS)
            list(APPEND flags /WX)
        endif()
    else()
        set(flags -Wall -Wextra -Wpedantic)
        if(MUSTER_WARNINGS_AS_ERRORS)
            list(APPEND flags -Werror)
        endif()
    endif()
    target_compile_options(${target} PRIVATE ${flags})
endfunction()
