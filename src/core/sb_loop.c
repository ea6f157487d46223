#include "core/sb_loop.h"

#include "core/sb_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct task {
    struct task *next;
    sb_loop_fn fn;
    void *arg;
} task;

typedef struct timer {
    uint64_t id, due_ms;
    size_t heap_idx;
    struct timer *hnext; /* hash chain */
    sb_loop_fn fn;
    void *arg;
} timer;

struct sb_loop {
    pthread_t thread;
    pthread_mutex_t mu;
    int epfd, evfd;
    int stopping;
    task *head, *tail;
    timer **heap;
    size_t nheap, capheap;
    timer **hash;
    size_t nhash; /* buckets, power of two */
    uint64_t next_id;
    /* when the loop thread will look at its timers again (UINT64_MAX: only when woken); a timer
     * due later needs no wake-up -- a call's deadline timer, added and cancelled per call, then
     * costs no cross-thread wake-up */
    uint64_t wake_at_ms;
};

static __thread const sb_loop *tl_current;

static void heap_swap(sb_loop *l, size_t a, size_t b)
{
    timer *t = l->heap[a];
    l->heap[a] = l->heap[b];
    l->heap[b] = t;
    l->heap[a]->heap_idx = a;
    l->heap[b]->heap_idx = b;
}

static void heap_up(sb_loop *l, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (l->heap[p]->due_ms <= l->heap[i]->due_ms) break;
        heap_swap(l, p, i);
        i = p;
    }
}

static void heap_down(sb_loop *l, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1, m = i;
        if (c < l->nheap && l->heap[c]->due_ms < l->heap[m]->due_ms) m = c;
        if (c + 1 < l->nheap && l->heap[c + 1]->due_ms < l->heap[m]->due_ms) m = c + 1;
        if (m == i) break;
        heap_swap(l, i, m);
        i = m;
    }
}

static void heap_remove(sb_loop *l, timer *t)
{
    size_t i = t->heap_idx;
    l->nheap--;
    if (i != l->nheap) {
        heap_swap(l, i, l->nheap);
        heap_down(l, i);
        heap_up(l, i);
    }
}

static void hash_remove(sb_loop *l, timer *t)
{
    timer **pp = &l->hash[t->id & (l->nhash - 1)];
    while (*pp && *pp != t) pp = &(*pp)->hnext;
    if (*pp) *pp = t->hnext;
}

static timer *hash_find(sb_loop *l, uint64_t id)
{
    timer *t = l->hash[id & (l->nhash - 1)];
    while (t && t->id != id) t = t->hnext;
    return t;
}

static void wake(sb_loop *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->evfd, &one, sizeof one);
    (void)w;
}

static void *run(void *arg)
{
    sb_loop *l = arg;
    tl_current = l;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        /* tasks first */
        task *t = l->head;
        l->head = l->tail = NULL;
        int stopping = l->stopping;
        pthread_mutex_unlock(&l->mu);
        while (t) {
            task *n = t->next;
            t->fn(t->arg);
            free(t);
            t = n;
        }
        if (stopping) {
            pthread_mutex_lock(&l->mu);
            int empty = l->head == NULL;
            pthread_mutex_unlock(&l->mu);
            if (empty) break;
            continue;
        }
        /* due timers */
        uint64_t now = sb_mono_ms();
        int timeout;
        for (;;) {
            pthread_mutex_lock(&l->mu);
            timer *tm = l->nheap ? l->heap[0] : NULL;
            if (!tm || tm->due_ms > now) {
                /* plan the wait under the same lock as the look at the heap, so a timer added
                 * after it compares with the planned wake-up (sb_loop_after) */
                uint64_t d = tm ? tm->due_ms - now : 1000;
                /* sleep at most 1 s, so timers due later never need a wake-up */
                timeout = l->head ? 0 : d > 1000 ? 1000 : (int)d;
                l->wake_at_ms = now + (uint64_t)timeout;
                pthread_mutex_unlock(&l->mu);
                break;
            }
            heap_remove(l, tm);
            hash_remove(l, tm);
            pthread_mutex_unlock(&l->mu);
            tm->fn(tm->arg);
            free(tm);
            now = sb_mono_ms();
        }
        struct epoll_event ev[8];
        int n = epoll_wait(l->epfd, ev, 8, timeout);
        if (n > 0) {
            uint64_t v;
            ssize_t r = read(l->evfd, &v, sizeof v);
            (void)r;
        }
    }
    return NULL;
}

sb_loop *sb_loop_start(void)
{
    sb_loop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->mu, NULL);
    l->nhash = 1024;
    l->hash = calloc(l->nhash, sizeof *l->hash);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    l->next_id = 1;
    l->wake_at_ms = 0; /* until the thread has planned its first wait, always wake it */
    if (!l->hash || l->epfd < 0 || l->evfd < 0) goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &ev) < 0) goto fail;
    if (pthread_create(&l->thread, NULL, run, l) != 0) goto fail;
    return l;
fail:
    if (l->epfd >= 0) close(l->epfd);
    if (l->evfd >= 0) close(l->evfd);
    free(l->hash);
    free(l);
    return NULL;
}

int sb_loop_post(sb_loop *l, sb_loop_fn fn, void *arg)
{
    task *t = malloc(sizeof *t);
    if (!t) return -1;
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        pthread_mutex_unlock(&l->mu);
        free(t);
        return -1;
    }
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    return 0;
}

static int hash_grow(sb_loop *l)
{
    size_t nn = l->nhash * 2;
    timer **nh = calloc(nn, sizeof *nh);
    if (!nh) return -1;
    for (size_t i = 0; i < l->nhash; i++) {
        timer *t = l->hash[i];
        while (t) {
            timer *n = t->hnext;
            t->hnext = nh[t->id & (nn - 1)];
            nh[t->id & (nn - 1)] = t;
            t = n;
        }
    }
    free(l->hash);
    l->hash = nh;
    l->nhash = nn;
    return 0;
}

uint64_t sb_loop_after(sb_loop *l, uint64_t ms, sb_loop_fn fn, void *arg)
{
    timer *t = calloc(1, sizeof *t);
    if (!t) return 0;
    t->fn = fn;
    t->arg = arg;
    t->due_ms = sb_mono_ms() + ms;
    pthread_mutex_lock(&l->mu);
    if (l->stopping) goto fail;
    if (l->nheap == l->capheap) {
        size_t nc = l->capheap ? l->capheap * 2 : 64;
        timer **nh = realloc(l->heap, nc * sizeof *nh);
        if (!nh) goto fail;
        l->heap = nh;
        l->capheap = nc;
    }
    if (l->nheap >= l->nhash && hash_grow(l) < 0) goto fail;
    t->id = l->next_id++;
    t->heap_idx = l->nheap;
    l->heap[l->nheap++] = t;
    heap_up(l, t->heap_idx);
    t->hnext = l->hash[t->id & (l->nhash - 1)];
    l->hash[t->id & (l->nhash - 1)] = t;
    int first = l->heap[0] == t && t->due_ms < l->wake_at_ms;
    uint64_t id = t->id;
    pthread_mutex_unlock(&l->mu);
    if (first && !sb_loop_on_thread(l)) wake(l);
    return id;
fail:
    pthread_mutex_unlock(&l->mu);
    free(t);
    return 0;
}

int sb_loop_cancel(sb_loop *l, uint64_t id)
{
    if (!id) return 0;
    pthread_mutex_lock(&l->mu);
    timer *t = hash_find(l, id);
    if (t) {
        heap_remove(l, t);
        hash_remove(l, t);
    }
    pthread_mutex_unlock(&l->mu);
    free(t);
    return t != NULL;
}

int sb_loop_on_thread(const sb_loop *l)
{
    return tl_current == l;
}

void sb_loop_stop(sb_loop *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_mutex_unlock(&l->mu);
    wake(l);
    pthread_join(l->thread, NULL);
    /* Timers still pending run now, in due order, so their owners can release what they hold
     * (callbacks must expect to run early; scheduling new work fails once stopping). */
    while (l->nheap > 0) {
        timer *tm = l->heap[0];
        heap_remove(l, tm);
        hash_remove(l, tm);
        tm->fn(tm->arg);
        free(tm);
    }
    /* tasks posted by those callbacks were refused; nothing is left */
    free(l->heap);
    free(l->hash);
    close(l->epfd);
    close(l->evfd);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
