# SPDX-License-Identifier: Apache-2.0
# Block index reader fuzz target (tsdb/index.c); included from tests/fuzz/CMakeLists.txt.
# replay_index runs the corpus as a ctest regression in every build; clang sanitizer builds also
# get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_index -max_total_time=300 SCRATCH tests/fuzz/corpus/index
if(TARGET mp_tsdb)
  add_executable(replay_index ${CMAKE_CURRENT_LIST_DIR}/fuzz_index.c
                              ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_index PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_index COMMAND replay_index ${CMAKE_CURRENT_LIST_DIR}/corpus/index)
  set_tests_properties(fuzz_replay_index PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_index ${CMAKE_CURRENT_LIST_DIR}/fuzz_index.c)
    target_compile_options(fuzz_index PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_index PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
