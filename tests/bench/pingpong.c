/* tests/bench/pingpong.c: the floor under issue 8's target 3 that the host sets before any server
 * runs -- what one wake-up across a loopback TCP connection costs. Two threads of this process
 * bounce one byte over a TCP_NODELAY connection on 127.0.0.1, first free to run on any core (the
 * scheduler puts them on different ones when both are idle), then both pinned to the first core
 * this process may use. A proxied call wakes a thread four times where the direct one wakes two;
 * whether a wake-up crosses cores is the scheduler's choice, and the two figures bound what each
 * costs on this host.
 *
 *   bench_pingpong [--rounds N]   (default 20000 round trips, after 1000 of warm-up)
 *
 * Prints
 *   bench pingpong: loopback TCP round trip (1 byte each way, two threads): median of 5 runs
 *     X us on any cores, Y us on one core
 * and exits 0; 1 when a socket call fails. peer.sh prints it beside target 3. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long rounds;
    int cpu; /* -1: not pinned */
} echo_arg;

static cpu_set_t g_all; /* the cores this process may use, as it started */

/* Pin the calling thread to cpu; -1: let it run on any of g_all again. */
static void pin(int cpu)
{
    cpu_set_t set = g_all;
    if (cpu >= 0) {
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
    }
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *echo(void *p)
{
    echo_arg *a = p;
    pin(a->cpu);
    char c;
    for (long i = 0; i < a->rounds; i++)
        if (read(a->fd, &c, 1) != 1 || write(a->fd, &c, 1) != 1) break;
    return NULL;
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* One run: the mean round trip in microseconds, or -1 on a failed socket call. */
static double run(long rounds, int cpu)
{
    int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &sl) < 0)
        return -1;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) < 0) return -1;
    int s = accept(l, NULL, NULL);
    close(l);
    if (s < 0) return -1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    long warm = 1000;
    echo_arg a = {.fd = s, .rounds = warm + rounds, .cpu = cpu};
    pthread_t t;
    if (pthread_create(&t, NULL, echo, &a) != 0) return -1;
    pin(cpu);
    char b = 'x';
    double t0 = 0;
    int ok = 1;
    for (long i = 0; i < warm + rounds && ok; i++) {
        if (i == warm) t0 = now_us();
        ok = write(c, &b, 1) == 1 && read(c, &b, 1) == 1;
    }
    double us = ok ? (now_us() - t0) / (double)rounds : -1;
    close(c);
    pthread_join(t, NULL);
    close(s);
    pin(-1);
    return us;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long rounds = 20000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = strtol(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: bench_pingpong [--rounds N]\n");
            return 2;
        }
    }
    if (rounds < 1) rounds = 1;
    int first = 0;
    if (sched_getaffinity(0, sizeof g_all, &g_all) != 0) {
        perror("bench_pingpong: sched_getaffinity");
        return 1;
    }
    while (first < CPU_SETSIZE - 1 && !CPU_ISSET(first, &g_all)) first++;
    double any[5], one[5];
    for (int k = 0; k < 5; k++) { /* alternated, so a slow spell of the host weighs on both */
        any[k] = run(rounds, -1);
        one[k] = run(rounds, first);
        if (any[k] < 0 || one[k] < 0) {
            perror("bench_pingpong");
            return 1;
        }
    }
    qsort(any, 5, sizeof any[0], cmp);
    qsort(one, 5, sizeof one[0], cmp);
    printf("bench pingpong: loopback TCP round trip (1 byte each way, two threads): median of 5 "
           "runs %.1f us on any cores, %.1f us on one core\n",
           any[2], one[2]);
    return 0;
}
