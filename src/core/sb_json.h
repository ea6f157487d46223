/* sb_json: a faster drop-in for cJSON_ParseWithLength, for the large documents signbridge parses
 * on every proxied call (provider answers). */
#ifndef SB_JSON_H
#define SB_JSON_H
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Parse the JSON value at the start of s[0..len) into a cJSON tree (free it with cJSON_Delete),
 * or NULL. Accepts and builds exactly what cJSON_ParseWithLength(s, len) does -- the same tree
 * for the same input, the same inputs refused (nesting deeper than CJSON_NESTING_LIMIT, a bad
 * escape, a truncated document), trailing bytes after the value ignored -- but about twice as fast:
 * a literal is compared only when its first letter matches, an integer of up to 15 digits is
 * read without strtod, and strings are copied in runs. fuzz_jsonrpc checks the two agree.
 * Requires cJSON's default allocator (malloc/free): signbridge never installs hooks. */
cJSON *sb_json_parse(const char *s, size_t len);
/* sb_json_parse that also gives, on success, where the value ends: *end is the byte after it, as
 * cJSON_ParseWithLengthOpts(s, len, end, 0) sets it (for a caller that refuses trailing bytes).
 * On failure *end is left as it was: cJSON's error position is cJSON's to compute. */
cJSON *sb_json_parse_end(const char *s, size_t len, const char **end);

/* The same tree, every node and string allocated from arena `a`: the text is copied into the
 * arena once and parsed there in place (each string is its own bytes in that copy, unescaped and
 * NUL-terminated where it stands; `s` is not changed). It lives until the arena is freed, and
 * must never be given to cJSON_Delete nor changed in a way that frees or links its nodes
 * (cJSON_Delete*, Detach*, Replace*, SetValuestring, AddItemTo* of one of its nodes into another
 * tree): read it, copy what outlives it. For provider answers, whose ~1,000 nodes cost
 * more to malloc and free one by one than to parse. NULL as sb_json_parse, or when the arena's
 * limit is reached (the arena then keeps what was allocated until it is freed). */
struct sb_arena;
cJSON *sb_json_parse_in(const char *s, size_t len, struct sb_arena *a);
/* The arena limit that always holds sb_json_parse_in's tree of a len-byte text: a node can take
 * 32 times the bytes it was parsed from ("[1,1,...]"), plus the text's own copy. */
static inline size_t sb_json_arena_bound(size_t len)
{
    return len < SIZE_MAX / 40 ? len * 40 + 65536 : SIZE_MAX / 2;
}

/* Whether string node v, of a tree from sb_json_parse_in, needs no escaping in JSON (no quote,
 * backslash or byte below 0x20: it is written as it stands, between quotes), known from the
 * parse; then *len is its value's length. 0 when it does, or when v is not such a node: cJSON and
 * sb_json_parse leave a string's valueint 0 (cJSON_Duplicate copies the hint with the string).
 * The hint is valueint, which cJSON does not use for strings, as length + 1: it stays true
 * because such a tree's strings are never changed (above). */
static inline int sb_json_clean(const cJSON *v, size_t *len)
{
    if (!v || (v->type & 0xFF) != cJSON_String || v->valueint <= 0) return 0;
    *len = (size_t)v->valueint - 1;
    return 1;
}

#endif
