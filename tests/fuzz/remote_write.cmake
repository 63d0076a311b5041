# SPDX-License-Identifier: Apache-2.0
# Remote-write body fuzz target (snappy + protobuf decode and validation, remote/write.c);
# included from tests/fuzz/CMakeLists.txt. replay_remote_write runs the corpus as a ctest
# regression in every build; clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_remote_write -max_total_time=300 tests/fuzz/corpus/remote_write
if(TARGET mp_remote)
  add_executable(replay_remote_write ${CMAKE_CURRENT_LIST_DIR}/fuzz_remote_write.c
                                     ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_remote_write PRIVATE mp_remote mp_common)
  add_test(NAME fuzz_replay_remote_write
           COMMAND replay_remote_write ${CMAKE_CURRENT_LIST_DIR}/corpus/remote_write)
  set_tests_properties(fuzz_replay_remote_write PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_remote PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_remote_write ${CMAKE_CURRENT_LIST_DIR}/fuzz_remote_write.c)
    target_compile_options(fuzz_remote_write PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_remote_write PRIVATE mp_remote mp_common -fsanitize=fuzzer)
  endif()
endif()
