#include "core/sb_later.h"

#include <stddef.h>

typedef struct later {
    void (*fn)(void *);
    void *arg;
} later;

static __thread int tl_on;
static __thread size_t tl_n;
static __thread later tl_q[SB_LATER_MAX];

void sb_later_enable(int on)
{
    if (!on) sb_later_flush();
    tl_on = on;
}

void sb_later(void (*fn)(void *), void *arg)
{
    if (!fn) return;
    if (!tl_on || tl_n == SB_LATER_MAX) {
        fn(arg);
        return;
    }
    tl_q[tl_n].fn = fn;
    tl_q[tl_n].arg = arg;
    tl_n++;
}

void sb_later_flush(void)
{
    /* what a call puts off while the queue runs joins its end and runs in this flush */
    for (size_t i = 0; i < tl_n; i++) tl_q[i].fn(tl_q[i].arg);
    tl_n = 0;
}
