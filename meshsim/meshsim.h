/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/meshsim.h: the simulated mesh (issue 5): linkerd2-proxy admin endpoints serving the
 * metric catalogue of shared/spec/linkerd-workload.md, and a fake Kubernetes API server for the
 * simulated pods (shared/spec/kubernetes-sd.md 4). Used by the meshsim binary, tests, the demo
 * and benchmarks. */
#ifndef MESHSIM_MESHSIM_H
#define MESHSIM_MESHSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/str.h"

/* ---- the fake Kubernetes API (k8s_fake.c) --------------------------------------------------- */

/* ---- the simulated mesh and its proxies ----------------------------------------------------- */

#endif
