# SPDX-License-Identifier: Apache-2.0
# meshpromtool, included by cmd/CMakeLists.txt (owned by the lead).
# mp_cmd_tool: the parts unit tests link (series selector parser).
add_library(mp_cmd_tool STATIC ${CMAKE_CURRENT_LIST_DIR}/selector.c)
target_include_directories(mp_cmd_tool PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(mp_cmd_tool PUBLIC mp_common)
if(TARGET mp_configs AND TARGET mp_tsdb AND TARGET mp_scraper AND TARGET mp_query)
  add_executable(meshpromtool ${CMAKE_CURRENT_LIST_DIR}/meshpromtool.c
    ${CMAKE_CURRENT_LIST_DIR}/tool_tsdb.c ${CMAKE_CURRENT_LIST_DIR}/tool_promql.c)
  target_link_libraries(meshpromtool PRIVATE mp_cmd_tool mp_configs mp_query mp_tsdb mp_scraper
    mp_common)
endif()
