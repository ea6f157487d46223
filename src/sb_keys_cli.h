/* sb_keys_cli: the `signbridge keys` management command (docs/keys.md). */
#ifndef SB_KEYS_CLI_H
#define SB_KEYS_CLI_H

/* argv[0] is "keys"; returns the process exit status (0 ok, 1 failure, 2 usage). */
int sb_keys_cli(int argc, char **argv, char **envp);

#endif
