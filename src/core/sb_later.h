/* sb_later: cleanup a thread puts off until the end of its event loop's turn -- after the
 * answers of that turn are on the wire -- so that freeing a result is not on the path to it. */
#ifndef SB_LATER_H
#define SB_LATER_H

/* An event-loop thread: 1 at its start (its sb_later calls wait for its sb_later_flush), 0 before
 * it exits (after a last flush). Other threads never wait: sb_later runs fn at once there. */
void sb_later_enable(int on);
/* 4: a turn serving one call puts its cleanup off; a busy turn frees at once, while the
 * allocator's caches are warm (64 made 50 connections 5-12% slower, docs/architecture.md) */
#define SB_LATER_MAX 4
/* Run fn(arg) at this thread's next sb_later_flush, or now when the thread does not flush or
 * already holds SB_LATER_MAX of them (no allocation, so it cannot fail). fn must not need
 * anything the rest of the turn frees first. */
void sb_later(void (*fn)(void *), void *arg);
/* Run what this thread put off, oldest first (also what those calls put off). */
void sb_later_flush(void);

#endif
