# SPDX-License-Identifier: Apache-2.0
# Compact block index fuzz target (tsdb/index.c, inputs inside its zstd frames);
# included from tests/fuzz/CMakeLists.txt.
# replay_cindex runs the corpus as a ctest regression in every build; clang sanitizer builds also
# get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_cindex -max_total_time=300 SCRATCH tests/fuzz/corpus/cindex
if(TARGET mp_tsdb)
  add_executable(replay_cindex ${CMAKE_CURRENT_LIST_DIR}/fuzz_cindex.c
                              ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_cindex PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_cindex COMMAND replay_cindex ${CMAKE_CURRENT_LIST_DIR}/corpus/cindex)
  set_tests_properties(fuzz_replay_cindex PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_cindex ${CMAKE_CURRENT_LIST_DIR}/fuzz_cindex.c)
    target_compile_options(fuzz_cindex PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_cindex PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
