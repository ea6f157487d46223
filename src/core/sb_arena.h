/* sb_arena: a bump allocator that owns every allocation of one request; freed all at once. */
#ifndef SB_ARENA_H
#define SB_ARENA_H
#include <stddef.h>

typedef struct sb_arena sb_arena;

/* New arena whose total allocations may not exceed `max_bytes` (0 = 64 MiB). Caller frees with
 * sb_arena_free. NULL on allocation failure. */
sb_arena *sb_arena_new(size_t max_bytes);
/* Allocate n zeroed bytes aligned for any type; owned by the arena. NULL when over the limit. */
void *sb_arena_alloc(sb_arena *a, size_t n);
/* Allocate n bytes with no alignment and not zeroed (string bytes); NULL when over the limit. */
void *sb_arena_alloc_bytes(sb_arena *a, size_t n);
/* Copy a string (n bytes, NUL added) into the arena. */
char *sb_arena_strndup(sb_arena *a, const char *s, size_t n);
char *sb_arena_strdup(sb_arena *a, const char *s);
char *sb_arena_printf(sb_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t sb_arena_used(const sb_arena *a);
/* Free the arena and everything allocated from it. NULL is allowed. */
void sb_arena_free(sb_arena *a);

#endif
