# SPDX-License-Identifier: Apache-2.0
# MP_SANITIZE=address,undefined | thread adds the sanitizer flags and defines MP_SANITIZER_BUILD.
if(MP_SANITIZE)
  if(MP_SANITIZE MATCHES "thread" AND MP_SANITIZE MATCHES "address")
    message(FATAL_ERROR "MP_SANITIZE: thread cannot be combined with address")
  endif()
  if(NOT MP_SANITIZE MATCHES "^(address|undefined|thread)(,(address|undefined|thread))*$")
    message(FATAL_ERROR "MP_SANITIZE: unsupported value '${MP_SANITIZE}'")
  endif()
  set(_mp_san -fsanitize=${MP_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_compile_options(${_mp_san})
  add_link_options(${_mp_san})
  add_compile_definitions(MP_SANITIZER_BUILD=1)
endif()
