# SPDX-License-Identifier: Apache-2.0
# WAL fuzz target (tsdb/wal.c reader, tsdb/record.c decoders); included from
# tests/fuzz/CMakeLists.txt. replay_wal runs the corpus as a ctest regression in every build;
# clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_wal -max_total_time=300 -rss_limit_mb=2048 SCRATCH tests/fuzz/corpus/wal
if(TARGET mp_tsdb)
  add_executable(replay_wal ${CMAKE_CURRENT_LIST_DIR}/fuzz_wal.c ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_wal PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_wal COMMAND replay_wal ${CMAKE_CURRENT_LIST_DIR}/corpus/wal)
  set_tests_properties(fuzz_replay_wal PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_wal ${CMAKE_CURRENT_LIST_DIR}/fuzz_wal.c)
    target_compile_options(fuzz_wal PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_wal PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
