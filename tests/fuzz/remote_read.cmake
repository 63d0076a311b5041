# SPDX-License-Identifier: Apache-2.0
# Remote-read request fuzz target (snappy + protobuf decode, response-type negotiation and
# matcher conversion, remote/read.c); included from tests/fuzz/CMakeLists.txt. replay_remote_read
# runs the corpus as a ctest regression in every build; clang sanitizer builds also get the
# libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_remote_read -max_total_time=300 tests/fuzz/corpus/remote_read
if(TARGET mp_remote)
  add_executable(replay_remote_read ${CMAKE_CURRENT_LIST_DIR}/fuzz_remote_read.c
                                    ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_remote_read PRIVATE mp_remote mp_common)
  add_test(NAME fuzz_replay_remote_read
           COMMAND replay_remote_read ${CMAKE_CURRENT_LIST_DIR}/corpus/remote_read)
  set_tests_properties(fuzz_replay_remote_read PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    # mp_remote is already instrumented by remote_write.cmake (fuzzer-no-link)
    add_executable(fuzz_remote_read ${CMAKE_CURRENT_LIST_DIR}/fuzz_remote_read.c)
    target_compile_options(fuzz_remote_read PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_remote_read PRIVATE mp_remote mp_common -fsanitize=fuzzer)
  endif()
endif()
