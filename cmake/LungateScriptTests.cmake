# lungate_script_tests(LABEL "NAME:LIMIT;..." "VAR=VALUE;...")
#
# One CTest entry LABEL.NAME per list entry: bash runs NAME.sh from the
# calling folder, in that folder's build directory, within LIMIT seconds, with
# the given environment plus TMPDIR (the build directory, so a failed test's
# files stay next to its build).  Exit status 77 means skipped.
find_program(BASH_PROGRAM bash REQUIRED)

function(lungate_script_tests label tests env)
  foreach(entry IN LISTS tests)
    string(REPLACE ":" ";" parts "${entry}")
    list(GET parts 0 name)
    list(GET parts 1 limit)
    add_test(NAME ${label}.${name}
      COMMAND ${BASH_PROGRAM} ${CMAKE_CURRENT_SOURCE_DIR}/${name}.sh
      WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    set_tests_properties(${label}.${name} PROPERTIES
      LABELS ${label}
      TIMEOUT ${limit}
      SKIP_RETURN_CODE 77
      ENVIRONMENT "${env};TMPDIR=${CMAKE_CURRENT_BINARY_DIR}")
  endforeach()
endfunction()
