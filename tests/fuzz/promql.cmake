# SPDX-License-Identifier: Apache-2.0
# PromQL parser fuzz target; included from tests/fuzz/CMakeLists.txt. replay_promql runs the
# corpus as a ctest regression in every build; clang sanitizer builds also get the libFuzzer
# binary:
#   build/fuzz/tests/fuzz/fuzz_promql -max_total_time=300 -dict=tests/fuzz/promql.dict tests/fuzz/corpus/promql
if(TARGET mp_query)
  add_executable(replay_promql ${CMAKE_CURRENT_LIST_DIR}/fuzz_promql.c
                               ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_promql PRIVATE mp_query mp_common)
  add_test(NAME fuzz_replay_promql COMMAND replay_promql ${CMAKE_CURRENT_LIST_DIR}/corpus/promql)
  set_tests_properties(fuzz_replay_promql PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_query PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_promql ${CMAKE_CURRENT_LIST_DIR}/fuzz_promql.c)
    target_compile_options(fuzz_promql PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_promql PRIVATE mp_query mp_common -fsanitize=fuzzer)
  endif()
endif()
