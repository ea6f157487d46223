/* tests/bench/mhd_floor.c: floors for issue 8's targets, run by peer.sh beside signbridge so the
 * targets' figures can be read against what this machine gives any server built on the same
 * libraries.
 *
 *   target 1: bench_mhd_floor --body-file F --port-file P [--threads 2] [--gzip]
 *     a bare libmicrohttpd server answering every request with F's bytes (signbridge's own
 *     tools/list answer; with --gzip, F holds its gzip-compressed answer and is sent with
 *     Content-Encoding: gzip) and doing nothing else
 *   target 5: bench_mhd_floor --libs --listen 127.0.0.1:0 --port-file P
 *     the same server that also loads and starts what signbridge cannot run without -- libcurl
 *     (curl_global_init, which initializes OpenSSL, and a multi handle per lane) and SQLite (an
 *     in-memory database) -- then idles: the least resident memory a server on these shared
 *     libraries holds here
 *
 * Listens on 127.0.0.1 (an ephemeral port, written to P), libmicrohttpd's epoll thread pool of
 * --threads threads; reads and drops request bodies; answers 200 application/json with F's bytes
 * ({"status":"ok"} without --body-file). Runs until SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *g_body;
static int g_gzip;
static size_t g_len;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ctx)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    if (!*ctx) {
        *ctx = c; /* first call: headers only */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* body bytes: dropped */
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(g_len, g_body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (g_gzip) MHD_add_response_header(r, "Content-Encoding", "gzip");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    for (size_t got; b && (got = fread(b + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *nb = cap < ((size_t)64 << 20) ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    const char *body_file = NULL, *port_file = NULL;
    unsigned threads = 2;
    int libs = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--libs") == 0) {
            libs = 1;
            continue;
        }
        if (strcmp(argv[i], "--gzip") == 0) {
            g_gzip = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_mhd_floor: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--body-file") == 0) body_file = argv[++i];
        else if (strcmp(argv[i], "--port-file") == 0) port_file = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0) threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--listen") == 0 && strcmp(argv[i + 1], "127.0.0.1:0") == 0) i++;
        else {
            fprintf(stderr, "bench_mhd_floor: unknown option %s (--listen takes 127.0.0.1:0 only)\n",
                    argv[i]);
            return 2;
        }
    }
    if (!port_file || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench_mhd_floor [--body-file F] --port-file P [--threads 1..64] "
                        "[--gzip] [--libs] [--listen 127.0.0.1:0]\n");
        return 2;
    }
    if (!body_file) {
        static char ok[] = "{\"status\":\"ok\"}";
        g_body = malloc(sizeof ok);
        if (g_body) memcpy(g_body, ok, sizeof ok);
        g_len = sizeof ok - 1;
    } else {
        g_body = read_file(body_file, &g_len);
    }
    if (!g_body) {
        fprintf(stderr, "bench_mhd_floor: cannot read %s\n", body_file);
        return 1;
    }
    CURLM *multi[64] = {NULL};
    sqlite3 *db = NULL;
    if (libs) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
        for (unsigned k = 0; k <= threads; k++) /* the shared lane and one per serving lane */
            if (!(multi[k] = curl_multi_init())) return 1;
        if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
            sqlite3_exec(db, "CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)", NULL, NULL, NULL) !=
                SQLITE_OK) {
            fprintf(stderr, "bench_mhd_floor: sqlite: %s\n", db ? sqlite3_errmsg(db) : "open");
            return 1;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the daemon's threads inherit the mask */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)4096, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_mhd_floor: cannot start libmicrohttpd\n");
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    FILE *pf = fopen(port_file, "w");
    if (!di || !pf || fprintf(pf, "%u\n", (unsigned)di->port) < 0 || fclose(pf) != 0) {
        fprintf(stderr, "bench_mhd_floor: cannot write %s\n", port_file);
        MHD_stop_daemon(d);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    if (libs) {
        sqlite3_close(db);
        for (unsigned k = 0; k <= threads; k++) curl_multi_cleanup(multi[k]);
        curl_global_cleanup();
    }
    free(g_body);
    return 0;
}
