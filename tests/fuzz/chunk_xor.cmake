# SPDX-License-Identifier: Apache-2.0
# XOR chunk codec fuzz target; include(chunk_xor.cmake) from tests/fuzz/CMakeLists.txt.
#   build/fuzz/tests/fuzz/fuzz_chunk_xor -max_total_time=60 tests/fuzz/corpus/chunk_xor
if(TARGET mp_tsdb)
  add_executable(replay_chunk_xor ${CMAKE_CURRENT_LIST_DIR}/fuzz_chunk_xor.c
                                  ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_chunk_xor PRIVATE mp_tsdb mp_common)
  add_test(NAME fuzz_replay_chunk_xor
           COMMAND replay_chunk_xor ${CMAKE_CURRENT_LIST_DIR}/corpus/chunk_xor)
  set_tests_properties(fuzz_replay_chunk_xor PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_tsdb PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_chunk_xor ${CMAKE_CURRENT_LIST_DIR}/fuzz_chunk_xor.c)
    target_compile_options(fuzz_chunk_xor PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_chunk_xor PRIVATE mp_tsdb mp_common -fsanitize=fuzzer)
  endif()
endif()
