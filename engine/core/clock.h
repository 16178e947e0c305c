/* clock.h — monotonic and wall clocks in milliseconds, and an injectable
 * clock type for code that tests want to drive by hand. */
#ifndef AC_CORE_CLOCK_H
#define AC_CORE_CLOCK_H

#include <stdint.h>

/* Milliseconds on CLOCK_MONOTONIC: for deadlines and durations. */
int64_t ac_clock_mono_ms(void);

/* Microseconds on CLOCK_MONOTONIC: for fine durations (benchmarks). */
int64_t ac_clock_mono_us(void);

/* Milliseconds since the Unix epoch: for timestamps shown to users. */
int64_t ac_clock_wall_ms(void);

/* Formats a wall time in ms as RFC 3339 UTC with milliseconds
 * ("2026-11-28T20:15:49.123Z") into out (at least 32 bytes). */
void ac_clock_rfc3339(int64_t wall_ms, char *out, unsigned out_size);

/* A clock a component reads through, so tests can inject a fake one. */
typedef struct ac_clock {
  int64_t (*now_ms)(void *ud); /* monotonic milliseconds */
  void *ud;
} ac_clock;

/* The real monotonic clock. */
ac_clock ac_clock_system(void);

/* Sleeps for ms milliseconds (restarting after signals). */
void ac_clock_sleep_ms(int64_t ms);

#endif
