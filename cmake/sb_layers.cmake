# cmake/sb_layers.cmake — the dependency rules of DESIGN §6, checked by the
# build. Include directories already keep a target from seeing the headers
# of a library it does not link; these rules keep each target from linking
# what its layer forbids. Configuring fails with a sentence when one does:
#   sb_layers_forbid(<target> <forbidden target>…)   record a rule
#   sb_layers_check()                                check every rule, once
# The check walks each target's link libraries, direct and transitive.

set_property(GLOBAL PROPERTY SB_LAYER_RULES "")

function(sb_layers_forbid target)
    foreach(bad ${ARGN})
        set_property(GLOBAL APPEND PROPERTY SB_LAYER_RULES "${target}|${bad}")
    endforeach()
endfunction()

# s_layers_closure(<target> <out>) — every target <target> links, transitively.
function(s_layers_closure target out)
    set(seen "")
    set(todo ${target})
    while(todo)
        list(POP_FRONT todo t)
        if(NOT TARGET ${t} OR t IN_LIST seen)
            continue()
        endif()
        list(APPEND seen ${t})
        get_target_property(type ${t} TYPE)
        set(links "")
        if(NOT type STREQUAL "INTERFACE_LIBRARY")
            get_target_property(direct ${t} LINK_LIBRARIES)
            if(direct)
                list(APPEND links ${direct})
            endif()
        endif()
        get_target_property(iface ${t} INTERFACE_LINK_LIBRARIES)
        if(iface)
            list(APPEND links ${iface})
        endif()
        foreach(l ${links})
            # $<LINK_ONLY:x> and other generator expressions around a name
            string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" l "${l}")
            list(APPEND todo ${l})
        endforeach()
    endwhile()
    list(REMOVE_ITEM seen ${target})
    set(${out} ${seen} PARENT_SCOPE)
endfunction()

function(sb_layers_check)
    get_property(rules GLOBAL PROPERTY SB_LAYER_RULES)
    set(broken "")
    foreach(rule ${rules})
        string(REPLACE "|" ";" pair "${rule}")
        list(GET pair 0 target)
        list(GET pair 1 bad)
        if(NOT TARGET ${target})
            message(FATAL_ERROR "layer rule names ${target}, which is not a target")
        endif()
        s_layers_closure(${target} links)
        if(bad IN_LIST links)
            string(APPEND broken "\n  ${target} may not link ${bad}")
        endif()
    endforeach()
    if(broken)
        message(FATAL_ERROR "DESIGN §6 layer rules broken:${broken}")
    endif()
    list(LENGTH rules n)
    message(STATUS "layer rules: ${n} checked, none broken")
endfunction()
