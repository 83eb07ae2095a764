/* Clocks for the drivers; see ibp/clock.h. */
#include "ibp/clock.h"

#include <errno.h>
#include <time.h>

int64_t ibp_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ibp_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ibp_clock_deadline(int64_t timeout_ms)
{
    int64_t now = ibp_clock_mono_ms();
    if (timeout_ms > 0 && now > INT64_MAX - timeout_ms)
        return INT64_MAX;
    return now + timeout_ms;
}

int64_t ibp_clock_remaining_ms(int64_t deadline)
{
    int64_t now = ibp_clock_mono_ms();
    return deadline > now ? deadline - now : 0;
}

void ibp_clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
