/* sb_provider: the provider adapter interface: for each tool, how to build the provider's REST
 * request from validated arguments and how to map its answer to the neutral model; plus the
 * provider's credential header and cheap probe. Adapters know nothing of HTTP serving or auth:
 * they get a resolved region, base URL and key, and return data. */
#ifndef SB_PROVIDER_H
#define SB_PROVIDER_H
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "core/sb_buf.h"
#include "core/sb_jw.h"

#define SB_PREQ_MAX_HEADERS 12

/* An upstream request under construction. Initialise with sb_preq_init, free with sb_preq_free. */
typedef struct sb_preq {
    char method[8];
    sb_buf url;                                 /* absolute URL */
    char *headers[SB_PREQ_MAX_HEADERS + 1];     /* "Name: value", malloc'd, NULL-terminated */
    size_t nheaders;
    sb_buf body;
    int idempotent;                             /* reads: may be retried by the engine */
    int no_auth;                                /* do not add the provider credential (fetching a
                                                   caller's https file URL) */
    size_t max_response;                        /* 0 = the engine default */
    char boundary[48];                          /* multipart boundary once begun */
} sb_preq;

/* What an adapter knows about one call. */
typedef struct sb_pctx {
    const char *provider;
    const char *region;
    const char *base_url;      /* REST base of the resolved region, no trailing slash */
    const char *key;           /* the caller's provider API key */
    size_t key_len;
    const char *request_id;
    int bearer;                /* key is an OAuth access token issued by the provider (sent as
                                  Authorization: Bearer) rather than an API key */
} sb_pctx;

/* An upstream answer handed to a mapper. */
typedef struct sb_presp {
    int status;
    const char *body;
    size_t len;
    cJSON *json;               /* parsed body when it was JSON, else NULL (owned by the caller) */
} sb_presp;

/* State across the steps of one tool call (most tools take one request; some take several, e.g.
 * iinked's upload-then-create, or fetching a caller's file URL first). */
typedef struct sb_pstep {
    int step;                  /* 0 for the answer to the first request, then 1, 2, ... */
    cJSON *scratch;            /* an object the adapter may keep data in between steps (owned by
                                  the bridge, freed after the call) */
    sb_preq next;              /* SB_PMAP_NEXT: the next request to send (initialised by the
                                  bridge before each map; the adapter calls sb_preq_init on it) */
    /* SB_PMAP_BLOB: a file to return (points into the response body) */
    const char *blob;
    size_t blob_len;
    char mime[96];
    char filename[160];
    /* SB_PMAP_JSON: the result (structuredContent) written as JSON text, with sb_jw: the hot read
     * tools (a page of documents) write it instead of building a tree (initialised by the bridge
     * before each map, which owns it) */
    sb_buf json;
} sb_pstep;

/* SB_PMAP_FAIL: a definitive failure the adapter explains itself (e.g. "no signer with that
 * email"); err is the whole message the LLM sees (no prefix is added). */
enum { SB_PMAP_FAIL = -2, SB_PMAP_DONE = 0, SB_PMAP_NEXT = 1, SB_PMAP_BLOB = 2, SB_PMAP_JSON = 3 };

typedef struct sb_ptool {
    const char *tool;          /* the neutral tool name */
    /* Build the first request. 0, or -1 with a message for the LLM in err (an argument this
     * provider cannot honour). Auth and common headers are added by the caller. `step` is the
     * call's step state (scratch is available). */
    int (*build)(const sb_pctx *c, const cJSON *args, sb_pstep *step, sb_preq *out, char *err,
                 size_t errlen);
    /* Map a 2xx answer. Returns SB_PMAP_DONE with the tool's structuredContent in *out (or
     * SB_PMAP_JSON with it written in step->json, *out untouched),
     * SB_PMAP_NEXT with step->next filled to send another request, SB_PMAP_BLOB with step->blob
     * set and *out holding the file's metadata, SB_PMAP_FAIL with a complete message in err, or
     * -1 with err when the answer is not what the provider documents (a malformed response). */
    int (*map)(const sb_pctx *c, const cJSON *args, const sb_presp *r, sb_pstep *step,
               cJSON **out, char *err, size_t errlen);
} sb_ptool;

typedef struct sb_adapter {
    const char *name;              /* "boldsign" */
    const char *display;           /* "BoldSign" */
    /* The credential header for a key: e.g. "X-API-KEY: <key>". -1 if it cannot be expressed. */
    int (*auth_header)(const char *key, size_t key_len, sb_buf *out);
    /* A cheap authenticated read that proves the key works in a region (2xx = valid). */
    int (*probe)(const sb_pctx *c, sb_preq *out);
    /* The provider's own error message from an error body ("" if none). */
    void (*error_message)(const sb_presp *r, char *out, size_t cap);
    const sb_ptool *tools;
    size_t ntools;
} sb_adapter;

extern const sb_adapter sb_adapter_boldsign;
extern const sb_adapter sb_adapter_dropboxsign;
extern const sb_adapter sb_adapter_iinkedsign;

/* Every adapter, in a fixed order: sb_adapter_at(i) for i < SB_N_ADAPTERS. */
#define SB_N_ADAPTERS 3
const sb_adapter *sb_adapter_at(size_t i);
/* The adapter for a provider name, or NULL. */
const sb_adapter *sb_adapter_find(const char *provider);
/* The adapter's implementation of a tool, or NULL when the provider cannot do it. */
const sb_ptool *sb_adapter_tool(const sb_adapter *a, const char *tool);

/* ---- helpers shared by the adapters ---------------------------------------------------------- */

void sb_preq_init(sb_preq *r, const char *method, int idempotent);
void sb_preq_free(sb_preq *r);
int sb_preq_header(sb_preq *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* url = base + path (path already escaped where needed). */
int sb_preq_url(sb_preq *r, const char *base, const char *path);
/* Append "?k=v" or "&k=v" with v percent-encoded (RFC 3986 unreserved kept). */
int sb_preq_query(sb_preq *r, const char *key, const char *value);
int sb_preq_query_int(sb_preq *r, const char *key, long long v);
/* Set a JSON body (taken) with Content-Type application/json. */
int sb_preq_json(sb_preq *r, cJSON *body);
/* multipart/form-data bodies (sets Content-Type with a random boundary on begin). */
int sb_preq_multipart_begin(sb_preq *r);
int sb_preq_multipart_field(sb_preq *r, const char *name, const char *value);
int sb_preq_multipart_file(sb_preq *r, const char *name, const char *filename,
                           const char *content_type, const void *data, size_t len);
int sb_preq_multipart_end(sb_preq *r);
/* Decode a file argument: {"base64": "...", "name": ..., "mime_type": ...} or a data: URI.
 * Returns a malloc'd buffer (caller frees) and its length, or NULL with err. */
unsigned char *sb_decode_base64_arg(const char *b64, size_t max, size_t *len, char *err,
                                    size_t errlen);
/* Percent-encode one path segment or query value into out. */
int sb_pct_encode(const char *s, sb_buf *out);

/* The file type its first bytes show: application/pdf ("%PDF-" within the first KiB, as PDF 1.7
 * §7.5.2 allows), image/png, image/jpeg, or the DOCX type for a ZIP; NULL otherwise. */
const char *sb_sniff_mime(const unsigned char *d, size_t n);

/* Reject ids that could alter a URL or header: 1..128 chars of [A-Za-z0-9._~:@-]. */
int sb_id_ok(const char *id);

/* JSON access that tolerates absence: */
/* o's member named key (case-sensitive, the first), or NULL: what cJSON_GetObjectItemCaseSensitive
 * returns, found faster. */
const cJSON *sb_jget(const cJSON *o, const char *key);
const char *sb_jstr(const cJSON *o, const char *key);       /* string or NULL */
int sb_jbool(const cJSON *o, const char *key, int def);
/* A number, or def when absent or not finite; clamped to +-2^53 so integer casts are defined. */
double sb_jnum(const cJSON *o, const char *key, double def);
/* The same reads of a member already found (v may be NULL):
 * sb_jstr(o, k) is sb_jv_str(sb_jget(o, k)). */
const char *sb_jv_str(const cJSON *v);
int sb_jv_bool(const cJSON *v, int def);
double sb_jv_num(const cJSON *v, double def);
/* n (at most 32) lookups in o at once: out[i] = sb_jget(o, names[i]), names distinct. One walk
 * over o's members, each name looked at once, where n sb_jget calls walk them n times: for a
 * mapper that reads a dozen members of each object in a list. */
#define SB_JPICK_MAX 32
void sb_jpick(const cJSON *o, const char *const *names, size_t n, const cJSON **out);
/* Adding members to a result. The key must be a string literal (the macros refuse anything else):
 * it is linked as a constant key, not copied, which saves an allocation and a free for each of
 * the hundreds of fields a list result has. */
/* Add a string or JSON null. */
#define sb_jadd_str(o, key, v) sb_jadd_str_((o), "" key, (v))
void sb_jadd_str_(cJSON *o, const char *key, const char *v);
/* Add an RFC 3339 time from epoch seconds (<= 0 or absent -> null). */
#define sb_jadd_epoch(o, key, epoch_s) sb_jadd_epoch_((o), "" key, (epoch_s))
void sb_jadd_epoch_(cJSON *o, const char *key, double epoch_s);
/* A provider's ISO 8601 time (RFC 3339, or without a zone: read as UTC) as epoch ms; -1 when it
 * cannot be read. */
int sb_ptime_ms(const char *iso, int64_t *ms);
/* Add an RFC 3339 time from a provider's ISO 8601 string (normalized to UTC; unparsable -> null). */
#define sb_jadd_iso(o, key, iso) sb_jadd_iso_((o), "" key, (iso))
void sb_jadd_iso_(cJSON *o, const char *key, const char *iso);
/* Add an integer or null when absent (v < 0 means absent). */
#define sb_jadd_int_or_null(o, key, v) sb_jadd_int_or_null_((o), "" key, (v))
void sb_jadd_int_or_null_(cJSON *o, const char *key, double v);

/* cJSON_Add<Type>ToObject with a constant key (a string literal, linked, not copied): the same
 * item added and returned, or NULL (nothing added) when it cannot be made. */
cJSON *sb_jput_(cJSON *o, const char *key, cJSON *item);
#define sb_jput_str(o, key, v) sb_jput_((o), "" key, cJSON_CreateString(v))
#define sb_jput_num(o, key, v) sb_jput_((o), "" key, cJSON_CreateNumber(v))
#define sb_jput_bool(o, key, v) sb_jput_((o), "" key, cJSON_CreateBool(v))
#define sb_jput_null(o, key) sb_jput_((o), "" key, cJSON_CreateNull())
#define sb_jput_true(o, key) sb_jput_((o), "" key, cJSON_CreateTrue())
#define sb_jput_false(o, key) sb_jput_((o), "" key, cJSON_CreateFalse())
#define sb_jput_obj(o, key) sb_jput_((o), "" key, cJSON_CreateObject())
#define sb_jput_arr(o, key) sb_jput_((o), "" key, cJSON_CreateArray())

/* The same for a result written with sb_jw (core/sb_jw.h), byte for byte what the tree built by
 * the sb_jadd_* calls prints. */
#define sb_pjw_epoch(w, key, s) (sb_jw_key_((w), SB_JW_KEY(key)), sb_pjw_vepoch((w), (s)))
#define sb_pjw_iso(w, key, iso) (sb_jw_key_((w), SB_JW_KEY(key)), sb_pjw_viso((w), (iso)))
#define sb_pjw_int_or_null(w, key, v) (sb_jw_key_((w), SB_JW_KEY(key)), sb_pjw_vint_or_null((w), (v)))
void sb_pjw_vepoch(sb_jw *w, double epoch_s);
void sb_pjw_viso(sb_jw *w, const char *iso);
void sb_pjw_vint_or_null(sb_jw *w, double v);
/* The most one item written on its own (for sb_pjw_tree) may take. */
#define SB_PJW_MAX ((size_t)16 << 20)
/* An adapter's writer of one item (a document) in the neutral model: 0, or -1 with nothing
 * written when the item is not one (no id), or when the filters in `a` (NULL: none) leave it out
 * (*dropped counts it then). */
typedef int (*sb_pjw_item_fn)(sb_jw *w, const cJSON *item, const cJSON *a, size_t *dropped);
/* The item fn writes, as a tree (NULL when it writes nothing). */
cJSON *sb_pjw_item_tree(sb_pjw_item_fn fn, const cJSON *item);
/* {"document": <item>, "provider", "region"} written into step->json: SB_PMAP_JSON, or -1 with
 * `missing` in err when fn writes nothing (the answer holds no document). */
int sb_pjw_document(const sb_pctx *c, sb_pstep *step, sb_pjw_item_fn fn, const cJSON *item,
                    const char *missing, char *err, size_t errlen);
/* The tree of what was written through w into its buffer, which is freed: for the few results
 * that build a tree around an item written with sb_jw. NULL (buffer freed too) when writing
 * failed. */
cJSON *sb_pjw_tree(sb_jw *w);

/* "a, b, c": the string `field` of each object in `arr`, joined for messages ("none" if empty). */
void sb_join_field(const cJSON *arr, const char *field, char *out, size_t cap);

/* 1 if list_documents' `status` filter (absent or empty = everything) admits this neutral status
 * (for providers that cannot filter upstream by every status). */
int sb_status_wanted(const cJSON *args, const char *neutral);

/* Neutral list envelope: {"<name>":items, page, page_size, total, next_page, provider, region}. */
cJSON *sb_list_result(const sb_pctx *c, const char *name, cJSON *items, long page, long page_size,
                      long long total, int has_next);
/* The same envelope written: sb_pjw_list_begin opens the object and its array ({"<name>":[),
 * sb_pjw_list_end closes the array and writes page .. region; the caller may add members (a note)
 * and closes the object. */
#define sb_pjw_list_begin(w, name) (sb_jw_open((w), '{'), sb_jw_arr((w), name))
void sb_pjw_list_end(sb_jw *w, const sb_pctx *c, long page, long page_size, long long total,
                     int has_next);

#endif
