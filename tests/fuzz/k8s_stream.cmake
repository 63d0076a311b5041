# SPDX-License-Identifier: Apache-2.0
# Kubernetes watch-stream decoder fuzz target (scraper/k8s_client.c framing, event decoding,
# object parsing); included from tests/fuzz/CMakeLists.txt. replay_k8s_stream runs the corpus
# as a ctest regression in every build; clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_k8s_stream -max_total_time=300 tests/fuzz/corpus/k8s_stream
if(TARGET mp_scraper)
  add_executable(replay_k8s_stream ${CMAKE_CURRENT_LIST_DIR}/fuzz_k8s_stream.c
                                   ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_k8s_stream PRIVATE mp_scraper mp_common PkgConfig::JSONC)
  add_test(NAME fuzz_replay_k8s_stream
           COMMAND replay_k8s_stream ${CMAKE_CURRENT_LIST_DIR}/corpus/k8s_stream)
  set_tests_properties(fuzz_replay_k8s_stream PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    add_executable(fuzz_k8s_stream ${CMAKE_CURRENT_LIST_DIR}/fuzz_k8s_stream.c)
    target_compile_options(fuzz_k8s_stream PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_k8s_stream PRIVATE mp_scraper mp_common PkgConfig::JSONC
                                                  -fsanitize=fuzzer)
  endif()
endif()
