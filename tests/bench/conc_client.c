/* tests/bench/conc_client.c: the load client of tests/bench/concurrency.py (built by meson as
 * bench_conc_client, not run as a test). One thread, epoll, non-blocking sockets, TCP_NODELAY:
 * the Python asyncio client needs ~5 s of its own to push and read 10,000 calls; this one drives
 * them in a few tens of milliseconds of CPU, so the figures are signbridge's.
 *
 *   bench_conc_client --port P --requests FILE --out FILE [--host 127.0.0.1] [--timeout-s 60]
 *                     [--connect-batch 1000]
 *
 * --requests FILE: N raw HTTP/1.1 requests, each framed as a decimal length, "\n", then exactly
 * that many bytes (no separator after them). Call i is request i on connection i.
 *
 * Setup (untimed): RLIMIT_NOFILE raised to its hard limit; N connections opened to HOST:P with at
 * most --connect-batch connects in progress at once (so the listen backlog is not overrun); then
 * "ready N" on stdout, and a line "go" awaited on stdin. Timed: every request is written in one
 * loop (a partial write finishes when the socket is writable again), then every response is read
 * completely (status line, headers, a body by Content-Length, chunked transfer-encoding, or up to
 * the close), each connection on its own. The run ends when every call has finished or failed,
 * or at --timeout-s after "go" (the calls still open then fail with "timeout").
 *
 * --out FILE: per call, in call order, one line
 *     i status start_s sent_s done_s headers_len body_len error_len
 * followed by exactly headers_len bytes of the raw status line and headers (the blank line
 * included), body_len bytes of the body (de-chunked) and error_len bytes of an error text.
 * Times are seconds on the monotonic clock since "go" was read: start_s when the call's first
 * write began, sent_s when its request was fully written (-1 if never), done_s when its response
 * was complete or the call failed. A failed call (reset, close, timeout, parse error) has status
 * 0, no headers and no body, and an error text.
 * Finally "done USER_S SYS_S" on stdout (this process's CPU seconds from "go" to the end) and exit
 * 0. Setup failures: a message on stderr and exit 1 (2 for bad arguments). Every wait is bounded by
 * --timeout-s. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECTING = 1, ST_IDLE, ST_SENDING, ST_READING, ST_DONE };
enum { BODY_LENGTH = 0, BODY_CHUNKED, BODY_CLOSE };

#define MAX_HEADER_BYTES (256u * 1024u)
#define MAX_CHUNK_LINE 1024u

typedef struct {
    int fd;
    int state;
    const char *req;
    size_t req_len, wpos;
    char *rbuf; /* raw response bytes */
    size_t rlen, rcap;
    size_t scan;    /* where the search for the end of the headers resumes */
    size_t hdr_len; /* status line + headers + blank line; 0 until complete */
    int status;
    int body_mode;
    size_t clen;    /* BODY_LENGTH */
    size_t cpos;    /* BODY_CHUNKED: offset in rbuf of the next chunk-size line */
    char *body;     /* BODY_CHUNKED: the decoded body */
    size_t blen, bcap;
    double t_start, t_sent, t_done;
    char err[160];
} conn;

static conn *conns;
static size_t nconns, npending;
static int ep = -1;
static struct timespec t_go;
static char rdbuf[256 * 1024];

static double mono_since(const struct timespec *base)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)(ts.tv_sec - base->tv_sec) + (double)(ts.tv_nsec - base->tv_nsec) / 1e9;
}

static double now_s(void) { return mono_since(&t_go); }

static struct timespec mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

/* Milliseconds left until deadline (a monotonic instant), 0 when passed. */
static int ms_left(const struct timespec *deadline)
{
    double left = -mono_since(deadline);
    if (left <= 0) return 0;
    if (left > 3600.0) return 3600 * 1000;
    return (int)(left * 1000.0) + 1;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static void die(int code, const char *what)
{
    fprintf(stderr, "bench_conc_client: %s\n", what);
    exit(code);
}

static void die_errno(const char *what)
{
    fprintf(stderr, "bench_conc_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static size_t cleanup_failures;

static void unwatch(conn *c)
{
    if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) < 0) cleanup_failures++;
}

/* The call failed: what, and a detail (or NULL). Its connection is closed. */
static void call_fail(conn *c, const char *what, const char *detail)
{
    if (c->state == ST_DONE) return;
    c->status = 0;
    c->hdr_len = 0;
    c->blen = 0;
    c->body_mode = BODY_LENGTH;
    c->clen = 0;
    if (snprintf(c->err, sizeof c->err, "%s%s%s", what, detail ? ": " : "", detail ? detail : "") < 0)
        c->err[0] = '\0';
    c->t_done = now_s();
    c->state = ST_DONE;
    if (c->fd >= 0) {
        unwatch(c);
        if (close(c->fd) < 0) cleanup_failures++;
        c->fd = -1;
    }
    npending--;
}

/* The response is complete. The connection stays open (as with the Python client), unwatched. */
static void call_done(conn *c)
{
    c->t_done = now_s();
    c->state = ST_DONE;
    unwatch(c);
    npending--;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 4096;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return -1;
        ncap *= 2;
    }
    char *nb = realloc(*buf, ncap);
    if (!nb) return -1;
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* The value of header line [p, e) if its name is `name` (case-insensitive), else NULL. */
static const char *header_value(const char *p, const char *e, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    if ((size_t)(e - p) <= nl || p[nl] != ':' || strncasecmp(p, name, nl) != 0) return NULL;
    const char *v = p + nl + 1;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    const char *ve = e;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    *vlen = (size_t)(ve - v);
    return v;
}

static int contains_ci(const char *v, size_t vlen, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= vlen; i++)
        if (strncasecmp(v + i, word, wl) == 0) return 1;
    return 0;
}

/* Parse the status line and headers (rbuf[0, hdr_len)). 0 ok, -1 on a malformed head. */
static int parse_head(conn *c)
{
    const char *b = c->rbuf, *end = c->rbuf + c->hdr_len - 2; /* up to the last header's CRLF */
    const char *eol = memchr(b, '\r', (size_t)(end - b));
    if (!eol || eol - b < 12 || memcmp(b, "HTTP/1.", 7) != 0 || b[8] != ' ') {
        snprintf(c->err, sizeof c->err, "malformed status line");
        return -1;
    }
    char code[4];
    memcpy(code, b + 9, 3);
    code[3] = '\0';
    long st;
    if (parse_long(code, 100, 599, &st) < 0) {
        snprintf(c->err, sizeof c->err, "malformed status code");
        return -1;
    }
    c->status = (int)st;
    int have_len = 0, chunked = 0;
    size_t clen = 0;
    const char *p = eol + 2;
    while (p < end) {
        const char *le = memchr(p, '\r', (size_t)(end - p));
        if (!le) le = end;
        size_t vlen = 0;
        const char *v;
        if ((v = header_value(p, le, "content-length", &vlen)) != NULL) {
            char num[32];
            if (vlen == 0 || vlen >= sizeof num) {
                snprintf(c->err, sizeof c->err, "bad Content-Length");
                return -1;
            }
            memcpy(num, v, vlen);
            num[vlen] = '\0';
            long cl;
            if (parse_long(num, 0, LONG_MAX, &cl) < 0) {
                snprintf(c->err, sizeof c->err, "bad Content-Length");
                return -1;
            }
            clen = (size_t)cl;
            have_len = 1;
        } else if ((v = header_value(p, le, "transfer-encoding", &vlen)) != NULL) {
            if (contains_ci(v, vlen, "chunked")) chunked = 1;
        }
        p = le + 2;
    }
    if (c->status < 200 || c->status == 204 || c->status == 304) {
        c->body_mode = BODY_LENGTH;
        c->clen = 0;
    } else if (chunked) {
        c->body_mode = BODY_CHUNKED;
        c->cpos = c->hdr_len;
    } else if (have_len) {
        c->body_mode = BODY_LENGTH;
        c->clen = clen;
    } else {
        c->body_mode = BODY_CLOSE;
    }
    return 0;
}

/* Walk the chunks received so far. 1 complete, 0 need more, -1 malformed. */
static int scan_chunks(conn *c)
{
    for (;;) {
        size_t avail = c->rlen - c->cpos;
        const char *line = c->rbuf + c->cpos;
        const char *eol = memmem(line, avail, "\r\n", 2);
        if (!eol) {
            if (avail > MAX_CHUNK_LINE) {
                snprintf(c->err, sizeof c->err, "chunk-size line too long");
                return -1;
            }
            return 0;
        }
        size_t ll = (size_t)(eol - line);
        if (ll == 0 || ll > MAX_CHUNK_LINE) {
            snprintf(c->err, sizeof c->err, "malformed chunk-size line");
            return -1;
        }
        char hex[MAX_CHUNK_LINE + 1];
        memcpy(hex, line, ll);
        hex[ll] = '\0';
        char *semi = strchr(hex, ';');
        if (semi) *semi = '\0';
        char *endp = NULL;
        errno = 0;
        unsigned long long size = strtoull(hex, &endp, 16);
        while (endp && (*endp == ' ' || *endp == '\t')) endp++;
        if (errno || endp == hex || !endp || *endp != '\0' || hex[0] == '-' ||
            size > (unsigned long long)(SIZE_MAX / 4)) {
            snprintf(c->err, sizeof c->err, "malformed chunk size");
            return -1;
        }
        size_t data = c->cpos + ll + 2;
        if (size == 0) {
            /* trailers, then an empty line */
            if (c->rlen - data >= 2 && memcmp(c->rbuf + data, "\r\n", 2) == 0) return 1;
            if (memmem(c->rbuf + data - 2, c->rlen - (data - 2), "\r\n\r\n", 4)) return 1;
            if (c->rlen - data > MAX_HEADER_BYTES) {
                snprintf(c->err, sizeof c->err, "trailers too long");
                return -1;
            }
            return 0;
        }
        if (c->rlen < data + (size_t)size + 2) return 0;
        if (memcmp(c->rbuf + data + size, "\r\n", 2) != 0) {
            snprintf(c->err, sizeof c->err, "chunk not followed by CRLF");
            return -1;
        }
        if (grow(&c->body, &c->bcap, c->blen + (size_t)size) < 0) {
            snprintf(c->err, sizeof c->err, "out of memory");
            return -1;
        }
        memcpy(c->body + c->blen, c->rbuf + data, (size_t)size);
        c->blen += (size_t)size;
        c->cpos = data + (size_t)size + 2;
    }
}

/* After new bytes arrived (or eof): 1 complete, 0 need more, -1 failed (c->err set). */
static int advance(conn *c, int eof)
{
    for (;;) {
        if (!c->hdr_len) {
            size_t from = c->scan > 3 ? c->scan - 3 : 0;
            const char *e = c->rlen >= 4 ? memmem(c->rbuf + from, c->rlen - from, "\r\n\r\n", 4)
                                         : NULL;
            if (!e) {
                c->scan = c->rlen;
                if (c->rlen > MAX_HEADER_BYTES) {
                    snprintf(c->err, sizeof c->err, "response headers too long");
                    return -1;
                }
                if (eof) {
                    snprintf(c->err, sizeof c->err, "connection closed after %zu bytes, before the "
                             "end of the headers", c->rlen);
                    return -1;
                }
                return 0;
            }
            c->hdr_len = (size_t)(e - c->rbuf) + 4;
            if (parse_head(c) < 0) return -1;
            if (c->status >= 100 && c->status < 200 && c->status != 101) {
                /* an interim response: drop it, the real one follows */
                memmove(c->rbuf, c->rbuf + c->hdr_len, c->rlen - c->hdr_len);
                c->rlen -= c->hdr_len;
                c->hdr_len = 0;
                c->scan = 0;
                c->status = 0;
                continue;
            }
        }
        switch (c->body_mode) {
        case BODY_LENGTH:
            if (c->rlen - c->hdr_len >= c->clen) return 1;
            break;
        case BODY_CHUNKED: {
            int r = scan_chunks(c);
            if (r != 0) return r;
            break;
        }
        default:
            if (eof) return 1;
            return 0;
        }
        if (eof) {
            snprintf(c->err, sizeof c->err, "connection closed in the body (status %d, %zu bytes "
                     "received)", c->status, c->rlen);
            return -1;
        }
        return 0;
    }
}

static void on_readable(conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, rdbuf, sizeof rdbuf, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            call_fail(c, "recv", strerror(errno));
            return;
        }
        if (r == 0) {
            int a = advance(c, 1);
            if (a == 1) call_done(c);
            else {
                char why[sizeof c->err];
                memcpy(why, c->err, sizeof why);
                why[sizeof why - 1] = '\0';
                call_fail(c, why[0] ? why : "connection closed", NULL);
            }
            return;
        }
        if (c->state == ST_SENDING) {
            call_fail(c, "response bytes before the request was fully sent", NULL);
            return;
        }
        if (grow(&c->rbuf, &c->rcap, c->rlen + (size_t)r) < 0) {
            call_fail(c, "out of memory", NULL);
            return;
        }
        memcpy(c->rbuf + c->rlen, rdbuf, (size_t)r);
        c->rlen += (size_t)r;
        int a = advance(c, 0);
        if (a == 1) {
            call_done(c);
            return;
        }
        if (a < 0) {
            char why[sizeof c->err];
            memcpy(why, c->err, sizeof why);
            why[sizeof why - 1] = '\0';
            call_fail(c, why, NULL);
            return;
        }
        if ((size_t)r < sizeof rdbuf) return; /* most likely drained; level-triggered anyway */
    }
}

/* Write what is left of the request. */
static void on_writable(conn *c)
{
    while (c->wpos < c->req_len) {
        ssize_t w = send(c->fd, c->req + c->wpos, c->req_len - c->wpos, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (c->state != ST_SENDING) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
                        call_fail(c, "epoll_ctl", strerror(errno));
                        return;
                    }
                    c->state = ST_SENDING;
                }
                return;
            }
            call_fail(c, "send", strerror(errno));
            return;
        }
        c->wpos += (size_t)w;
    }
    c->t_sent = now_s();
    if (c->state == ST_SENDING) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            call_fail(c, "epoll_ctl", strerror(errno));
            return;
        }
    }
    c->state = ST_READING;
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < 0) {
        close(fd);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        close(fd);
        return NULL;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(b);
            close(fd);
            return NULL;
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *len = n;
    return b;
}

/* Split the requests file into calls. Returns the count, or exits on a framing error. */
static size_t parse_requests(char *b, size_t n, conn **out)
{
    size_t cap = 0, cnt = 0, pos = 0;
    conn *cs = NULL;
    while (pos < n) {
        char *nl = memchr(b + pos, '\n', n - pos);
        if (!nl) die(1, "--requests: a length line without a newline");
        size_t ll = (size_t)(nl - (b + pos));
        char num[32];
        if (ll == 0 || ll >= sizeof num) die(1, "--requests: bad length line");
        memcpy(num, b + pos, ll);
        num[ll] = '\0';
        long len;
        if (parse_long(num, 1, 64L * 1024 * 1024, &len) < 0) die(1, "--requests: bad length");
        pos += ll + 1;
        if ((size_t)len > n - pos) die(1, "--requests: a request runs past the end of the file");
        if (cnt == cap) {
            cap = cap ? cap * 2 : 1024;
            conn *ncs = realloc(cs, cap * sizeof *ncs);
            if (!ncs) die(1, "out of memory");
            cs = ncs;
        }
        memset(&cs[cnt], 0, sizeof cs[cnt]);
        cs[cnt].fd = -1;
        cs[cnt].req = b + pos;
        cs[cnt].req_len = (size_t)len;
        cs[cnt].t_sent = -1.0;
        cnt++;
        pos += (size_t)len;
    }
    *out = cs;
    return cnt;
}

static void raise_nofile(size_t need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die_errno("getrlimit");
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die_errno("setrlimit");
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        fprintf(stderr, "bench_conc_client: RLIMIT_NOFILE hard limit %llu < %zu needed\n",
                (unsigned long long)rl.rlim_cur, need);
        exit(1);
    }
}

static void open_all(const struct sockaddr_in *sa, long batch, int timeout_s)
{
    struct timespec deadline = mono_now();
    deadline.tv_sec += timeout_s;
    size_t next = 0, connected = 0, inprogress = 0;
    struct epoll_event evs[1024];
    while (connected < nconns) {
        while (inprogress < (size_t)batch && next < nconns) {
            conn *c = &conns[next];
            c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c->fd < 0) die_errno("socket");
            int one = 1;
            if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                die_errno("setsockopt TCP_NODELAY");
            struct epoll_event ev = {.data.ptr = c};
            if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) == 0) {
                c->state = ST_IDLE;
                ev.events = EPOLLIN;
                connected++;
            } else if (errno == EINPROGRESS) {
                c->state = ST_CONNECTING;
                ev.events = EPOLLOUT;
                inprogress++;
            } else {
                fprintf(stderr, "bench_conc_client: connect #%zu: %s\n", next, strerror(errno));
                exit(1);
            }
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die_errno("epoll_ctl ADD");
            next++;
        }
        if (connected == nconns) break;
        int left = ms_left(&deadline);
        if (left == 0) {
            fprintf(stderr, "bench_conc_client: only %zu of %zu connections open after %d s\n",
                    connected, nconns, timeout_s);
            exit(1);
        }
        int k = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), left);
        if (k < 0) {
            if (errno == EINTR) continue;
            die_errno("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state != ST_CONNECTING) {
                fprintf(stderr, "bench_conc_client: connection #%zu closed or errored during setup\n",
                        (size_t)(c - conns));
                exit(1);
            }
            int err = 0;
            socklen_t el = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) die_errno("getsockopt");
            if (err) {
                fprintf(stderr, "bench_conc_client: connect #%zu: %s\n", (size_t)(c - conns),
                        strerror(err));
                exit(1);
            }
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die_errno("epoll_ctl MOD");
            c->state = ST_IDLE;
            inprogress--;
            connected++;
        }
    }
}

/* Wait for the line "go" on stdin. */
static void wait_go(int timeout_s)
{
    struct timespec deadline = mono_now();
    deadline.tv_sec += timeout_s;
    char line[64];
    size_t len = 0;
    for (;;) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        int left = ms_left(&deadline);
        if (left == 0) die(1, "no \"go\" on stdin within --timeout-s");
        int r = poll(&pfd, 1, left);
        if (r < 0) {
            if (errno == EINTR) continue;
            die_errno("poll stdin");
        }
        if (r == 0) continue;
        char ch;
        ssize_t n = read(0, &ch, 1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die_errno("read stdin");
        }
        if (n == 0) die(1, "stdin closed before \"go\"");
        if (ch == '\n') {
            line[len] = '\0';
            if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
            if (strcmp(line, "go") == 0) return;
            len = 0;
            continue;
        }
        if (len + 1 < sizeof line) line[len++] = ch;
    }
}

static void run(int timeout_s)
{
    npending = nconns;
    for (size_t i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        c->t_start = now_s();
        on_writable(c);
    }
    struct timespec deadline = t_go;
    deadline.tv_sec += timeout_s;
    struct epoll_event evs[4096];
    while (npending > 0) {
        int left = ms_left(&deadline);
        if (left == 0) break;
        int k = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), left);
        if (k < 0) {
            if (errno == EINTR) continue;
            die_errno("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            conn *c = evs[i].data.ptr;
            if (c->state == ST_DONE) continue;
            if (c->state == ST_SENDING && (evs[i].events & EPOLLOUT)) on_writable(c);
            if (c->state == ST_DONE) continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
        }
    }
    for (size_t i = 0; i < nconns; i++) {
        conn *c = &conns[i];
        if (c->state != ST_DONE)
            call_fail(c, "timeout", c->state == ST_SENDING ? "request not fully sent"
                                                           : "no complete response");
    }
}

static int write_out(const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int bad = 0;
    for (size_t i = 0; i < nconns && !bad; i++) {
        conn *c = &conns[i];
        size_t blen = 0;
        if (c->status) {
            if (c->body_mode == BODY_CHUNKED) blen = c->blen;
            else if (c->body_mode == BODY_LENGTH) blen = c->clen;
            else blen = c->rlen - c->hdr_len;
        }
        size_t hlen = c->status ? c->hdr_len : 0;
        size_t elen = c->status ? 0 : strlen(c->err);
        if (fprintf(f, "%zu %d %.6f %.6f %.6f %zu %zu %zu\n", i, c->status, c->t_start, c->t_sent,
                    c->t_done, hlen, blen, elen) < 0)
            bad = 1;
        if (!bad && hlen && fwrite(c->rbuf, 1, hlen, f) != hlen) bad = 1;
        if (!bad && blen) {
            const char *body = c->body_mode == BODY_CHUNKED ? c->body : c->rbuf + c->hdr_len;
            if (fwrite(body, 1, blen, f) != blen) bad = 1;
        }
        if (!bad && elen && fwrite(c->err, 1, elen, f) != elen) bad = 1;
    }
    if (fclose(f) != 0) bad = 1;
    return bad ? -1 : 0;
}

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void usage(void)
{
    fprintf(stderr, "usage: bench_conc_client --port P --requests FILE --out FILE [--host ADDR] "
                    "[--timeout-s 60] [--connect-batch 1000]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *req_path = NULL, *out_path = NULL, *host = "127.0.0.1";
    long port = -1, timeout_s = 60, batch = 1000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0) {
            if (parse_long(v, 1, 65535, &port) < 0) usage();
        } else if (strcmp(a, "--requests") == 0) {
            req_path = v;
        } else if (strcmp(a, "--out") == 0) {
            out_path = v;
        } else if (strcmp(a, "--host") == 0) {
            host = v;
        } else if (strcmp(a, "--timeout-s") == 0) {
            if (parse_long(v, 1, 3600, &timeout_s) < 0) usage();
        } else if (strcmp(a, "--connect-batch") == 0) {
            if (parse_long(v, 1, 100000, &batch) < 0) usage();
        } else {
            usage();
        }
    }
    if (port < 0 || !req_path || !out_path) usage();
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die(2, "--host: not an IPv4 address");
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) die_errno("signal");

    size_t flen = 0;
    char *file = read_file(req_path, &flen);
    if (!file) die_errno("--requests: cannot read the file");
    nconns = parse_requests(file, flen, &conns);
    if (nconns == 0) die(1, "--requests: no request in the file");

    raise_nofile(nconns + 16);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die_errno("epoll_create1");
    t_go = mono_now(); /* until "go": times of setup failures only */
    open_all(&sa, batch, (int)timeout_s);
    if (printf("ready %zu\n", nconns) < 0 || fflush(stdout) != 0) die_errno("stdout");

    wait_go((int)timeout_s);
    t_go = mono_now();
    struct rusage ru0, ru1;
    if (getrusage(RUSAGE_SELF, &ru0) < 0) die_errno("getrusage");
    run((int)timeout_s);
    if (getrusage(RUSAGE_SELF, &ru1) < 0) die_errno("getrusage");

    if (write_out(out_path) < 0) die_errno("--out: cannot write the file");
    if (cleanup_failures)
        fprintf(stderr, "bench_conc_client: warning: %zu epoll_ctl DEL / close failures\n", cleanup_failures);
    if (printf("done %.3f %.3f\n", tv_s(ru1.ru_utime) - tv_s(ru0.ru_utime),
               tv_s(ru1.ru_stime) - tv_s(ru0.ru_stime)) < 0 ||
        fflush(stdout) != 0)
        die_errno("stdout");
    return 0;
}
