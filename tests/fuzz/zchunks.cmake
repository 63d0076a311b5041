# SPDX-License-Identifier: Apache-2.0
# Compressed chunk segment fuzz target (tsdb/zchunks.c reader);
# included from tests/fuzz/CMakeLists.txt. replay_zchunks runs the corpus as a ctest regression
# in every build; clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_zchunks -max_total_time=300 SCRATCH tests/fuzz/corpus/zchunks
if(TARGET mp_tsdb)
  add_executable(replay_zchunks ${CMAKE_CURRENT_LIST_DIR}/fuzz_zchunks.c
                               ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_zchunks PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_zchunks COMMAND replay_zchunks ${CMAKE_CURRENT_LIST_DIR}/corpus/zchunks)
  set_tests_properties(fuzz_replay_zchunks PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_zchunks ${CMAKE_CURRENT_LIST_DIR}/fuzz_zchunks.c)
    target_compile_options(fuzz_zchunks PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_zchunks PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
