/* sb_ptoken: provider access tokens verified against each configured issuer's discovered JWKS. */
#include "auth/sb_ptoken.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sb_metrics.h"
#include "core/sb_util.h"

#define TOKEN_CACHE 1024 /* verified tokens kept (tok_slot): a power of two */

/* A token that verified: its signature, issuer and audience hold for as long as its issuer's key
 * set is the one it was verified with (gen), so the outcome is kept; exp and the later of nbf and
 * iat are checked again at every use, with the same leeway. Keyed by SHA-256 of the token (the
 * token itself is not kept). */
typedef struct tok_slot {
    unsigned char digest[32];
    int used;
    int issuer;             /* index in sb_ptoken.iss */
    uint64_t gen;           /* that issuer's key generation when it verified */
    double exp, not_before; /* not_before: max(nbf, iat), or -HUGE_VAL without either */
} tok_slot;

/* A key set shared by the verifiers that hold it: freed by the last release. */
typedef struct keyref {
    sb_jwks *ks;
    int refs; /* under sb_ptoken.mu */
} keyref;

typedef struct issuer {
    sb_ptoken_issuer cfg;
    keyref *keys;        /* NULL until the first successful refresh */
    uint64_t fetched_ms; /* monotonic time of the last successful refresh */
    uint64_t forced_ms;  /* monotonic time of the last unknown-kid mark */
    uint64_t gen;        /* key generation: +1 at every swap of keys (tok_slot.gen) */
    int want_refresh;
} issuer;

struct sb_ptoken {
    pthread_mutex_t mu; /* guards every issuer's keys/fetched_ms/forced_ms/gen/want_refresh and
                           the token cache */
    pthread_mutex_t refresh_mu; /* one refresh at a time */
    sb_ptoken_fetch_fn fetch;
    void *ud;
    size_t n;
    issuer iss[SB_PTOKEN_MAX_ISSUERS];
    tok_slot *tokens; /* TOKEN_CACHE slots, allocated at the first verified token (mu) */
    sb_mseries *checked, *cached; /* signbridge_provider_token_checks_total{result} */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void keyref_release(sb_ptoken *p, keyref *r)
{
    if (!r) return;
    pthread_mutex_lock(&p->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) {
        sb_jwks_free(r->ks);
        free(r);
    }
}

sb_ptoken *sb_ptoken_new(const sb_ptoken_issuer *iss, size_t n, sb_ptoken_fetch_fn fetch, void *ud)
{
    if (!iss || n == 0 || n > SB_PTOKEN_MAX_ISSUERS || !fetch) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!iss[i].issuer[0] || !memchr(iss[i].issuer, '\0', sizeof iss[i].issuer) ||
            !memchr(iss[i].provider, '\0', sizeof iss[i].provider) ||
            !memchr(iss[i].region, '\0', sizeof iss[i].region) ||
            !memchr(iss[i].audience, '\0', sizeof iss[i].audience))
            return NULL;
    sb_ptoken *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_mutex_init(&p->refresh_mu, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    p->fetch = fetch;
    p->ud = ud;
    p->n = n;
    sb_mfamily *tc = sb_metrics_family(
        sb_metrics_global(), SB_METRIC_COUNTER, "signbridge_provider_token_checks_total",
        "Provider access tokens presented (provider-token mode): verified against the issuer's "
        "keys, or a token verified before with the same keys and still valid (cached).",
        1, (const char *const[]){"result"});
    p->checked = sb_metrics_series(tc, (const char *const[]){"verified"});
    p->cached = sb_metrics_series(tc, (const char *const[]){"cached"});
    for (size_t i = 0; i < n; i++)
        p->iss[i].cfg = iss[i];
    return p;
}

void sb_ptoken_free(sb_ptoken *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        keyref_release(p, p->iss[i].keys);
    free(p->tokens);
    pthread_mutex_destroy(&p->refresh_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Length of the scheme://host[:port] prefix of url (0 if none). */
static size_t origin_len(const char *url)
{
    const char *s = strstr(url, "://");
    if (!s) return 0;
    const char *e = strchr(s + 3, '/');
    return e ? (size_t)(e - url) : strlen(url);
}

/* The JWKS URI must be https, or on the issuer's own origin. */
static int jwks_uri_ok(const char *issuer_url, const char *uri)
{
    if (strncmp(uri, "https://", 8) == 0) return 1;
    size_t ol = origin_len(issuer_url);
    return ol > 0 && strncmp(uri, issuer_url, ol) == 0 && uri[ol] == '/';
}

/* Fetch discovery and keys of one issuer; a new key set or NULL. */
static sb_jwks *fetch_keys(sb_ptoken *p, const sb_ptoken_issuer *cfg)
{
    char url[512];
    size_t il = strlen(cfg->issuer);
    int trailing = il > 0 && cfg->issuer[il - 1] == '/';
    int w = snprintf(url, sizeof url, "%.*s/.well-known/openid-configuration",
                     (int)(il - (size_t)trailing), cfg->issuer);
    if (w < 0 || (size_t)w >= sizeof url) return NULL;
    size_t len = 0;
    char *body = p->fetch(p->ud, url, SB_PTOKEN_MAX_DISCOVERY, &len);
    if (!body) return NULL;
    cJSON *d = len <= SB_PTOKEN_MAX_DISCOVERY ? cJSON_ParseWithLength(body, len) : NULL;
    free(body);
    const cJSON *jiss = cJSON_GetObjectItemCaseSensitive(d, "issuer");
    const cJSON *juri = cJSON_GetObjectItemCaseSensitive(d, "jwks_uri");
    char uri[1024];
    if (!cJSON_IsObject(d) || !cJSON_IsString(jiss) ||
        strcmp(jiss->valuestring, cfg->issuer) != 0 || !cJSON_IsString(juri) ||
        strlen(juri->valuestring) >= sizeof uri || !jwks_uri_ok(cfg->issuer, juri->valuestring)) {
        cJSON_Delete(d);
        return NULL;
    }
    sb_strlcpy(uri, juri->valuestring, sizeof uri);
    cJSON_Delete(d);
    len = 0;
    body = p->fetch(p->ud, uri, SB_PTOKEN_MAX_JWKS, &len);
    if (!body) return NULL;
    sb_jwks *ks = NULL;
    char err[128];
    if (len > SB_PTOKEN_MAX_JWKS || sb_jwks_parse(&ks, body, len, err, sizeof err) != 0) ks = NULL;
    free(body);
    return ks;
}

int sb_ptoken_refresh(sb_ptoken *p, int max_age_s)
{
    if (!p) return -1;
    int failed = 0;
    pthread_mutex_lock(&p->refresh_mu);
    for (size_t i = 0; i < p->n; i++) {
        issuer *is = &p->iss[i];
        uint64_t now = sb_mono_ms();
        pthread_mutex_lock(&p->mu);
        int due = !is->keys || is->want_refresh ||
                  now - is->fetched_ms >= (uint64_t)(max_age_s > 0 ? max_age_s : 0) * 1000u;
        pthread_mutex_unlock(&p->mu);
        if (!due) continue;
        sb_jwks *ks = fetch_keys(p, &is->cfg); /* no lock held: fetch may block */
        if (!ks) {
            failed++;
            pthread_mutex_lock(&p->mu);
            is->want_refresh = 0; /* retried by the timer, or after the next unknown kid */
            pthread_mutex_unlock(&p->mu);
            continue;
        }
        keyref *r = calloc(1, sizeof *r);
        if (!r) {
            sb_jwks_free(ks);
            failed++;
            continue;
        }
        r->ks = ks;
        r->refs = 1; /* the issuer's reference */
        pthread_mutex_lock(&p->mu);
        keyref *old = is->keys;
        is->keys = r;
        is->gen++; /* tokens verified with the old set are verified again */
        is->fetched_ms = sb_mono_ms();
        is->want_refresh = 0;
        pthread_mutex_unlock(&p->mu);
        keyref_release(p, old);
    }
    pthread_mutex_unlock(&p->refresh_mu);
    return -failed;
}

long sb_ptoken_key_age_s(sb_ptoken *p, size_t i)
{
    if (!p || i >= p->n) return -1;
    pthread_mutex_lock(&p->mu);
    long age = p->iss[i].keys ? (long)((sb_mono_ms() - p->iss[i].fetched_ms) / 1000u) : -1;
    pthread_mutex_unlock(&p->mu);
    return age;
}

/* The payload's iss, untrusted: only used to pick a configured issuer. Index, with the parsed
 * payload in *payload (caller cJSON_Delete), or -1 with *payload NULL. */
static int pick_issuer(const sb_ptoken *p, const char *token, size_t len, cJSON **payload)
{
    *payload = NULL;
    const char *d1 = memchr(token, '.', len);
    if (!d1) return -1;
    const char *pl = d1 + 1;
    const char *d2 = memchr(pl, '.', len - (size_t)(pl - token));
    if (!d2 || d2 == pl) return -1;
    size_t n = (size_t)(d2 - pl);
    for (size_t i = 0; i < n; i++) {
        char c = pl[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return -1;
    }
    size_t cap = n / 4 * 3 + 3;
    char *buf = malloc(cap + 1);
    if (!buf) return -1;
    long dl = sb_base64_decode(pl, n, (unsigned char *)buf, cap);
    int found = -1;
    if (dl > 0) {
        cJSON *c = cJSON_ParseWithLength(buf, (size_t)dl);
        const cJSON *iss = cJSON_GetObjectItemCaseSensitive(c, "iss");
        if (cJSON_IsString(iss))
            for (size_t i = 0; i < p->n && found < 0; i++)
                if (strcmp(p->iss[i].cfg.issuer, iss->valuestring) == 0) found = (int)i;
        if (found >= 0)
            *payload = c;
        else
            cJSON_Delete(c);
    }
    free(buf);
    return found;
}

int sb_ptoken_verify(sb_ptoken *p, const char *token, size_t len, char provider[16],
                     char region[24], cJSON **claims_out, char *err, size_t errlen)
{
    if (claims_out) *claims_out = NULL;
    seterr(err, errlen, "%s", "");
    if (!p) return SB_JWT_EINTERNAL;
    if (!token || len == 0 || len > SB_JWT_MAX_TOKEN) {
        seterr(err, errlen, "token empty or longer than %d bytes", SB_JWT_MAX_TOKEN);
        return SB_JWT_EMALFORMED;
    }
    cJSON *payload = NULL;
    int idx = pick_issuer(p, token, len, &payload);
    if (idx < 0) {
        seterr(err, errlen, "issuer not configured (or payload unreadable)");
        return SB_JWT_EISS;
    }
    issuer *is = &p->iss[idx];
    /* a token verified before with this issuer's current keys, and still within its times, is
     * not verified again: its payload (parsed above from the same bytes) is the claims */
    unsigned char dg[32];
    SHA256((const unsigned char *)token, len, dg);
    unsigned at;
    memcpy(&at, dg, sizeof at);
    at &= TOKEN_CACHE - 1;
    double now = (double)time(NULL);
    int hit = 0;
    pthread_mutex_lock(&p->mu);
    const tok_slot *s = p->tokens ? &p->tokens[at] : NULL;
    if (s && s->used && s->issuer == idx && is->keys && s->gen == is->gen &&
        now < s->exp + SB_PTOKEN_LEEWAY_S && s->not_before <= now + SB_PTOKEN_LEEWAY_S &&
        sb_ct_equal(s->digest, sizeof s->digest, dg, sizeof dg))
        hit = 1;
    keyref *r = NULL;
    uint64_t gen = is->gen;
    if (!hit && (r = is->keys)) r->refs++;
    pthread_mutex_unlock(&p->mu);
    int rc;
    if (hit) {
        sb_metrics_inc(p->cached);
        rc = SB_JWT_OK;
        if (claims_out) {
            *claims_out = payload;
            payload = NULL;
        }
    } else if (!r) {
        sb_metrics_inc(p->checked);
        seterr(err, errlen, "no keys yet for this issuer");
        rc = SB_JWT_EKID;
    } else {
        sb_metrics_inc(p->checked);
        sb_jwt_expect ex = {.iss = is->cfg.issuer,
                            .aud = is->cfg.audience[0] ? is->cfg.audience : NULL,
                            .leeway_s = SB_PTOKEN_LEEWAY_S};
        cJSON *cl = NULL;
        rc = sb_jwt_verify(r->ks, token, len, &ex, &cl, err, errlen);
        keyref_release(p, r);
        if (rc == SB_JWT_OK) {
            tok_slot t = {.used = 1, .issuer = idx, .gen = gen};
            memcpy(t.digest, dg, sizeof dg);
            sb_jwt_claim_times(cl, &t.exp, &t.not_before);
            pthread_mutex_lock(&p->mu);
            if (!p->tokens) p->tokens = calloc(TOKEN_CACHE, sizeof *p->tokens);
            if (p->tokens) p->tokens[at] = t; /* a token in the same slot gives way */
            pthread_mutex_unlock(&p->mu);
            if (claims_out)
                *claims_out = cl;
            else
                cJSON_Delete(cl);
        }
    }
    cJSON_Delete(payload);
    if (rc == SB_JWT_EKID) {
        uint64_t mono = sb_mono_ms();
        pthread_mutex_lock(&p->mu);
        if (!is->forced_ms || mono - is->forced_ms >= SB_PTOKEN_KID_RETRY_S * 1000u) {
            is->forced_ms = mono;
            is->want_refresh = 1;
        }
        pthread_mutex_unlock(&p->mu);
    }
    if (rc == SB_JWT_OK) {
        if (provider) sb_strlcpy(provider, is->cfg.provider, 16);
        if (region) sb_strlcpy(region, is->cfg.region, 24);
    }
    return rc;
}
