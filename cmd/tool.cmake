# SPDX-License-Identifier: Apache-2.0
# meshpromtool, included by cmd/CMakeLists.txt (owned by the lead).
if(TARGET mp_configs)
  add_executable(meshpromtool ${CMAKE_CURRENT_LIST_DIR}/meshpromtool.c)
  target_link_libraries(meshpromtool PRIVATE mp_configs mp_common)
endif()
