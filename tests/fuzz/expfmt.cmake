# SPDX-License-Identifier: Apache-2.0
# Scrape body parser fuzz target (text 0.0.4 and OpenMetrics); included from
# tests/fuzz/CMakeLists.txt. replay_expfmt runs the corpus as a ctest regression in every
# build; clang sanitizer builds also get the libFuzzer binary:
#   build/fuzz/tests/fuzz/fuzz_expfmt -max_total_time=300 -dict=tests/fuzz/expfmt.dict tests/fuzz/corpus/expfmt
if(TARGET mp_scraper)
  add_executable(replay_expfmt ${CMAKE_CURRENT_LIST_DIR}/fuzz_expfmt.c
                               ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_link_libraries(replay_expfmt PRIVATE mp_scraper mp_common)
  add_test(NAME fuzz_replay_expfmt COMMAND replay_expfmt ${CMAKE_CURRENT_LIST_DIR}/corpus/expfmt)
  set_tests_properties(fuzz_replay_expfmt PROPERTIES LABELS unit TIMEOUT 300)

  if(CMAKE_C_COMPILER_ID MATCHES "Clang" AND MP_SANITIZE MATCHES "address")
    target_compile_options(mp_scraper PRIVATE -fsanitize=fuzzer-no-link)
    add_executable(fuzz_expfmt ${CMAKE_CURRENT_LIST_DIR}/fuzz_expfmt.c)
    target_compile_options(fuzz_expfmt PRIVATE -fsanitize=fuzzer)
    target_link_libraries(fuzz_expfmt PRIVATE mp_scraper mp_common -fsanitize=fuzzer)
  endif()
endif()
