# Writes OUT (a C++ header defining SARLOOP_REVISION) from `git describe` of SRC, rewriting it only
# when the revision changed so a build without a new commit recompiles nothing. Run at every build.
execute_process(
  COMMAND git -C "${SRC}" describe --always --dirty --abbrev=12
  OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR revision STREQUAL "")
  set(revision "unknown (not built from a git checkout)")
endif()
set(text "#define SARLOOP_REVISION \"${revision}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
