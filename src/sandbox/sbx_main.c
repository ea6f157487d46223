/* signbridge-sandbox: command line for the provider emulator (see sbx.h, docs/sandbox.md). */
#include "core/sb_buf.h"
#include "core/sb_log.h"
#include "core/sb_util.h"
#include "sandbox/sbx_server.h"
#include "sb_version.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: signbridge-sandbox [options]\n"
    "\n"
    "An offline emulator of the BoldSign, Dropbox Sign and iinked Sign APIs in every region.\n"
    "\n"
    "  --listen ADDR:PORT       listen address (default 127.0.0.1:8090; port 0 picks one)\n"
    "  --port-file FILE         write the bound port there once ready\n"
    "  --seed N                 seed for the demo data (default 1)\n"
    "  --tls-cert FILE          serve HTTPS with this PEM certificate (with --tls-key)\n"
    "  --tls-key FILE           PEM private key for --tls-cert\n"
    "  --no-rate-limits         turn the providers' rate limits off\n"
    "  --oauth-auto-approve     authorize pages approve at once with the demo user\n"
    "  --auto-progress-ms N     sent documents take a lifecycle step every N ms\n"
    "  --latency-ms N           add N ms to every provider response\n"
    "  --fault JSON             a fault rule, as for POST /_sandbox/faults (repeatable)\n"
    "  --threads N              HTTP worker threads (default 2)\n"
    "  --max-head-bytes N       largest request line + headers, 4096..1048576 (default 16384);\n"
    "                           each connection holds this much once answered\n"
    "  --log-level LEVEL        debug | info | warn | error | off (default warn)\n"
    "  --version, --help\n"
    "\n"
    "Control endpoints: GET /_sandbox/accounts, /_sandbox/stats, /_sandbox/requests,\n"
    "/_sandbox/faults, /_sandbox/config; POST /_sandbox/reset, /_sandbox/faults,\n"
    "/_sandbox/config, /_sandbox/documents/{id}/advance. See docs/sandbox.md.\n";

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sb_buf b;
    sb_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_buf_append(&b, chunk, n) != 0) break;
    fclose(f);
    return sb_buf_detach(&b, NULL);
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sbx_options o = {.listen = "127.0.0.1:8090", .seed = 1, .rate_limits = 1, .threads = 2};
    const char *port_file = NULL, *cert = NULL, *key = NULL;
    const char *faults[33] = {0};
    int nf = 0;
    sb_log_set_level(SB_LOG_WARN);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n;
        if (strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("signbridge-sandbox %s\n", SB_VERSION);
            return 0;
        } else if (strcmp(a, "--no-rate-limits") == 0) {
            o.rate_limits = 0;
            continue;
        } else if (strcmp(a, "--oauth-auto-approve") == 0) {
            o.auto_approve = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "signbridge-sandbox: %s needs a value (or is unknown)\n%s", a, usage);
            return 2;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            o.listen = v;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--seed") == 0 && sb_parse_i64(v, 0, INT64_MAX, &n) == 0) {
            o.seed = (uint64_t)n;
        } else if (strcmp(a, "--tls-cert") == 0) {
            cert = v;
        } else if (strcmp(a, "--tls-key") == 0) {
            key = v;
        } else if (strcmp(a, "--auto-progress-ms") == 0 && sb_parse_i64(v, 0, 86400000, &n) == 0) {
            o.auto_progress_ms = (unsigned)n;
        } else if (strcmp(a, "--latency-ms") == 0 && sb_parse_i64(v, 0, 3600000, &n) == 0) {
            o.latency_ms = (unsigned)n;
        } else if (strcmp(a, "--threads") == 0 && sb_parse_i64(v, 1, 64, &n) == 0) {
            o.threads = (unsigned)n;
        } else if (strcmp(a, "--max-head-bytes") == 0 &&
                   sb_parse_i64(v, 4096, 1024 * 1024, &n) == 0) {
            o.max_head_bytes = (unsigned)n;
        } else if (strcmp(a, "--fault") == 0 && nf < 32) {
            faults[nf++] = v;
        } else if (strcmp(a, "--log-level") == 0 && sb_log_level_parse(v) >= 0) {
            sb_log_set_level(sb_log_level_parse(v));
        } else {
            fprintf(stderr, "signbridge-sandbox: bad option or value: %s %s\n%s", a, v, usage);
            return 2;
        }
    }
    o.faults = faults;
    char *cert_pem = NULL, *key_pem = NULL;
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "signbridge-sandbox: --tls-cert and --tls-key go together\n");
        return 2;
    }
    if (cert) {
        cert_pem = read_file(cert);
        key_pem = read_file(key);
        if (!cert_pem || !key_pem) {
            fprintf(stderr, "signbridge-sandbox: cannot read %s or %s: %s\n", cert, key,
                    strerror(errno));
            return 2;
        }
        o.tls_cert_pem = cert_pem;
        o.tls_key_pem = key_pem;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    sbx *s = sbx_start(&o, err, sizeof err);
    if (!s) {
        fprintf(stderr, "signbridge-sandbox: %s\n", err);
        return 1;
    }
    if (port_file && write_port_file(port_file, sbx_port(s)) < 0) {
        fprintf(stderr, "signbridge-sandbox: cannot write %s\n", port_file);
        sbx_stop(s);
        return 1;
    }
    fprintf(stderr, "signbridge-sandbox: listening on %s (seed %llu)\n", sbx_origin(s),
            (unsigned long long)o.seed);
    int sig;
    while (sigwait(&sigs, &sig) != 0) {
    }
    sbx_stop(s);
    free(cert_pem);
    free(key_pem);
    return 0;
}
