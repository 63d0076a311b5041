# SPDX-License-Identifier: Apache-2.0
add_compile_options(-Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wvla
                    -Wimplicit-fallthrough -Wno-unused-parameter)
if(MP_WERROR)
  add_compile_options(-Werror)
endif()
