/* sb_loop: one event-loop thread (epoll + eventfd) that runs posted tasks and timers. */
#ifndef SB_LOOP_H
#define SB_LOOP_H
#include <stdint.h>

typedef struct sb_loop sb_loop;
typedef void (*sb_loop_fn)(void *arg);

/* Start the loop thread. NULL on failure. */
sb_loop *sb_loop_start(void);
/* Run fn(arg) on the loop thread as soon as possible. Thread-safe. 0 or -1 (then fn never runs). */
int sb_loop_post(sb_loop *l, sb_loop_fn fn, void *arg);
/* Run fn(arg) on the loop thread after `ms` milliseconds. Returns a timer id > 0, or 0 on failure
 * (then fn never runs). Thread-safe. */
uint64_t sb_loop_after(sb_loop *l, uint64_t ms, sb_loop_fn fn, void *arg);
/* Cancel a timer. Returns 1 if it was cancelled before it ran (fn will never run), 0 if it has run
 * or is running. Thread-safe. */
int sb_loop_cancel(sb_loop *l, uint64_t id);
/* 1 when called on the loop thread. */
int sb_loop_on_thread(const sb_loop *l);
/* Stop the thread and free the loop. Posted tasks run first; timers still pending then run at once
 * (early) on the calling thread, so their owners can release what they hold. */
void sb_loop_stop(sb_loop *l);

#endif
