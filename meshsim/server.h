/* SPDX-License-Identifier: Apache-2.0 */
/* meshsim/server.h (private to meshsim/): the publisher (publish.c) that mirrors the
 * simulator's pods, Services, Endpoints, EndpointSlices and Nodes into a fake Kubernetes
 * API server, with the object lifecycles of kubernetes-sd.md 4.5. It belongs to the thread
 * that owns the struct meshsim (the server loop). */
#ifndef MESHSIM_SERVER_H
#define MESHSIM_SERVER_H

#include "meshsim/meshsim.h"

struct meshsim_publish; /* opaque */

/* Starts a fake API server on listen and publishes the current objects (pods Running and
 * Ready). MP_EINVAL / MP_EIO from meshsim_k8s_create. */
MP_NODISCARD int meshsim_publish_create(struct meshsim *m, const char *listen, uint16_t proxy_port,
                                        struct meshsim_publish **out, struct mp_err *err);
/* Follows the pod set at model time elapsed_ms: new pods go Pending -> IP -> Running ->
 * Ready, replaced ones get a deletionTimestamp and are deleted after their grace period;
 * Endpoints and EndpointSlices follow readiness. */
void meshsim_publish_sync(struct meshsim_publish *p, int64_t elapsed_ms);
void meshsim_publish_destroy(struct meshsim_publish *p); /* NULL is a no-op */
const char *meshsim_publish_url(const struct meshsim_publish *p);
struct meshsim_k8s *meshsim_publish_k8s(const struct meshsim_publish *p);

#endif
