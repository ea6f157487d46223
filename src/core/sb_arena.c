#include "core/sb_arena.h"

#include <stdarg.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block {
    struct block *next;
    size_t used, size;
    alignas(max_align_t) unsigned char mem[];
} block;

struct sb_arena {
    block *head;
    size_t total, max;
};

#define BLOCK_MIN 4096

sb_arena *sb_arena_new(size_t max_bytes)
{
    sb_arena *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->max = max_bytes ? max_bytes : (size_t)64 << 20;
    return a;
}

/* n bytes at a multiple of `al` (a power of two), not zeroed */
static void *take(sb_arena *a, size_t n, size_t al)
{
    if (n > a->max) return NULL; /* also keeps the rounding below from wrapping */
    if (n == 0) n = 1;
    block *b = a->head;
    size_t at = b ? (b->used + al - 1) & ~(al - 1) : 0;
    if (!b || at > b->size || b->size - at < n) {
        size_t size = n > BLOCK_MIN ? n : BLOCK_MIN;
        if (b && b->size * 2 > size && b->size * 2 <= (size_t)1 << 20) size = b->size * 2;
        if (size > a->max - a->total) {
            if (n > a->max - a->total) return NULL;
            size = n;
        }
        block *nb = malloc(sizeof *nb + size);
        if (!nb) return NULL;
        nb->next = a->head;
        nb->used = 0;
        nb->size = size;
        a->head = nb;
        a->total += size;
        b = nb;
        at = 0; /* mem is aligned for any type */
    }
    void *p = b->mem + at;
    b->used = at + n;
    return p;
}

void *sb_arena_alloc(sb_arena *a, size_t n)
{
    const size_t al = alignof(max_align_t);
    if (n > a->max) return NULL;
    n = (n + al - 1) & ~(al - 1);
    void *p = take(a, n ? n : al, al);
    if (p) memset(p, 0, n ? n : al);
    return p;
}

void *sb_arena_alloc_bytes(sb_arena *a, size_t n)
{
    return take(a, n, 1);
}

char *sb_arena_strndup(sb_arena *a, const char *s, size_t n)
{
    char *p = sb_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sb_arena_strdup(sb_arena *a, const char *s)
{
    return sb_arena_strndup(a, s, strlen(s));
}

char *sb_arena_printf(sb_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = sb_arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

size_t sb_arena_used(const sb_arena *a)
{
    return a->total;
}

void sb_arena_free(sb_arena *a)
{
    if (!a) return;
    block *b = a->head;
    while (b) {
        block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}
