# SPDX-License-Identifier: Apache-2.0
# cmake -DIN=<protoc-c output dir> -DOUT=<dir> -P pb_rename.cmake
# Copies remote.pb-c.{c,h} with the C names of package prometheus (prometheus__x, Prometheus__X,
# PROMETHEUS__X) renamed to remote_pb__x, RemotePb__X, REMOTE_PB__X. Strings such as the full
# name "prometheus.WriteRequest" contain no "__" and stay as they are.
foreach(_f remote.pb-c.c remote.pb-c.h)
  file(READ ${IN}/${_f} _s)
  string(REPLACE "prometheus__" "remote_pb__" _s "${_s}")
  string(REPLACE "Prometheus__" "RemotePb__" _s "${_s}")
  string(REPLACE "PROMETHEUS__" "REMOTE_PB__" _s "${_s}")
  file(WRITE ${OUT}/${_f}.tmp "${_s}")
  file(RENAME ${OUT}/${_f}.tmp ${OUT}/${_f})
endforeach()
