/*
 * Clocks for the drivers (never for the pure cores: the vote engine, the
 * event lifecycle and the aggregators take time as an input).
 */
#ifndef IBP_CLOCK_H
#define IBP_CLOCK_H

#include <stdint.h>

/* Wall clock, Unix milliseconds (UTC). Thread-safe. */
int64_t ibp_clock_wall_ms(void);

/* Monotonic milliseconds, for intervals and timeouts. Thread-safe. */
int64_t ibp_clock_mono_ms(void);

/*
 * A deadline timeout_ms from now on the monotonic clock (ibp_clock_mono_ms
 * units). Saturates at INT64_MAX instead of overflowing; a negative timeout
 * gives a deadline already passed. Thread-safe.
 */
int64_t ibp_clock_deadline(int64_t timeout_ms);

/*
 * Milliseconds left until a deadline from ibp_clock_deadline, 0 once it has
 * passed (never negative). Thread-safe.
 */
int64_t ibp_clock_remaining_ms(int64_t deadline);

/* Sleeps ms milliseconds (returns early only if ms <= 0). */
void ibp_clock_sleep_ms(int64_t ms);

#endif
