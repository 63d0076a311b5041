# SPDX-License-Identifier: Apache-2.0
# Chunk file fuzz target (tsdb/chunks.c segment reader, tsdb/head_chunks.c record parser);
# included from tests/fuzz/CMakeLists.txt. replay_chunks runs the corpus as a ctest regression
# in every build; clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_chunks -max_total_time=300 SCRATCH tests/fuzz/corpus/chunks
if(TARGET mp_tsdb)
  add_executable(replay_chunks ${CMAKE_CURRENT_LIST_DIR}/fuzz_chunks.c
                               ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_chunks PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_chunks COMMAND replay_chunks ${CMAKE_CURRENT_LIST_DIR}/corpus/chunks)
  set_tests_properties(fuzz_replay_chunks PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_chunks ${CMAKE_CURRENT_LIST_DIR}/fuzz_chunks.c)
    target_compile_options(fuzz_chunks PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_chunks PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
