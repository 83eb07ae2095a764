/*
 * The load of the fault suite (tests/fault):
 *
 *   - the members' servers: a TCP listener per check port of the demo network,
 *     which the monitors' connect checks reach; one port (Beta Infra's
 *     endpoint check) flaps on a schedule, so the official state keeps
 *     changing and events keep flowing; the test can freeze it up or down;
 *   - DNS traffic: a thread sending dns_hit requests to dns1's control socket
 *     at a steady rate and counting the ones dns1 acknowledged.
 *
 * All of it runs on threads of its own; the functions below may be called
 * from the test's main thread while they run.
 */
#ifndef IBP_FAULT_LOAD_H
#define IBP_FAULT_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_cluster.h"

typedef struct fault_load fault_load;

/*
 * Binds every port (chosen by the kernel) on 127.0.0.1 and, when extra_host
 * is set, on that address too (the same port numbers), starts the listener
 * thread and writes the ports to ports[]. The flapping port starts up and
 * does not flap until fl_flap. 0 or -1.
 */
int fl_start(fault_load **out, const char *extra_host, unsigned ports[FC_PORTS]);

/* Starts flapping: down for period_ms, up for period_ms, and so on. */
void fl_flap(fault_load *l, int period_ms);

/* Stops flapping and holds the flapping port up (or down). */
void fl_hold(fault_load *l, bool up);

/* Whether the flapping port accepts connections now. */
bool fl_flap_up(fault_load *l);

/* Starts sending per_second dns_hit requests to fc's dns1. 0 or -1. */
int fl_hits_start(fault_load *l, const fault_cluster *fc, int per_second);

/* Stops the hit thread (joined). */
void fl_hits_stop(fault_load *l);

/* Hits dns1 acknowledged so far; requests that failed (dns1 away). */
uint64_t fl_hits_acked(fault_load *l);
uint64_t fl_hits_failed(fault_load *l);

/* Stops every thread and closes every socket. Accepts NULL. */
void fl_free(fault_load *l);

#endif
