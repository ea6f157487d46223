/* sb_launch: `signbridge --sandbox`: start the bundled signbridge-sandbox as a child process,
 * wait until it serves, print its demo credentials, and stop it when signbridge stops. */
#ifndef SB_LAUNCH_H
#define SB_LAUNCH_H
#include <stddef.h>
#include <sys/types.h>

typedef struct sb_launch {
    pid_t pid;
    unsigned port;
    char url[64]; /* "http://127.0.0.1:PORT" */
    char port_file[256];
} sb_launch;

/* Start the sandbox (the binary next to our own executable, else signbridge-sandbox from PATH)
 * listening on 127.0.0.1:0 and wait up to 10 s for it. 0 or -1 with err. */
int sb_launch_sandbox(sb_launch *l, char *err, size_t errlen);
/* Print the demo accounts (GET /_sandbox/accounts) and how to connect, to stdout. */
void sb_launch_print_accounts(const sb_launch *l, const char *public_url);
/* Use the sandbox's own OAuth apps for "Sign in with the provider" (one per provider and region,
 * unless the configuration already has one there). */
struct sb_config;
void sb_launch_oauth_apps(const sb_launch *l, struct sb_config *cfg);
/* Stop the child (SIGTERM, then SIGKILL after 5 s) and reap it. */
void sb_launch_stop(sb_launch *l);

#endif
