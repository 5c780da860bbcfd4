/*  common/sb_config.h — configuration: one table of options per process.

    Each option has a name, a type, bounds, a default, an environment
    variable and a help line. Values come from, lowest priority first:
    the default, a config file (`--config FILE`, lines `name = value`,
    `#` comments), the environment variable, then `--name=value` or
    `--name value` on the command line. `--help` prints the table.

        static const sb_option_t s_options [] = {
            { "listen", SB_OPT_STR, "127.0.0.1:8080", 0, 0,
              "SB_GATEWAY_LISTEN", "address:port to serve HTTP on" },
            { "timeout-ms", SB_OPT_INT, "30000", 100, 600000,
              "SB_TIMEOUT_MS", "deadline of a tool call" },
            { NULL }
        };
        sb_config_t *config = sb_config_new ("sb-gateway", s_options);
        int rc = sb_config_load (config, argc, argv);   // 0 ok, 1 help shown, -1 error shown
*/
#ifndef SB_CONFIG_H_INCLUDED
#define SB_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

#include "sb_attr.h"

#define SB_MAX_CONFIG_VALUE     4096    /* longest value, bytes */
#define SB_MAX_CONFIG_FILE      65536   /* largest config file, bytes */

typedef enum {
    SB_OPT_STR,     /* any string up to SB_MAX_CONFIG_VALUE */
    SB_OPT_INT,     /* decimal integer within [min, max] */
    SB_OPT_BOOL,    /* true/false/1/0/yes/no/on/off */
} sb_opt_type_t;

typedef struct {
    const char *name;       /* option name, used as --name and in files */
    sb_opt_type_t type;     /* value type */
    const char *def;        /* default value as text (NULL = required for STR) */
    long min;               /* INT: smallest allowed */
    long max;               /* INT: largest allowed */
    const char *env;        /* environment variable that overrides the file */
    const char *help;       /* one line for --help and the README */
} sb_option_t;

typedef struct _sb_config_t sb_config_t;

/*  Creates a configuration for `program` over `options` (borrowed; must
    outlive the config; terminated by an entry with name NULL). */
sb_config_t *sb_config_new (const char *program, const sb_option_t *options) SB_MUST_USE;

/*  Destroys the config and nulls the caller's pointer. Idempotent. */
void sb_config_destroy (sb_config_t **self_p);

/*  Loads defaults, file, environment and argv. Returns 0 when the values
    are valid, 1 when --help was printed (caller exits 0), -1 when an error
    was printed to stderr (caller exits 2). */
int sb_config_load (sb_config_t *self, int argc, char **argv)
    SB_MUST_USE;

/*  Value of option `name` (which must exist in the table: asserted). The
    string is borrowed from the config. An unset STR without default is "". */
const char *sb_config_str (sb_config_t *self, const char *name);
long sb_config_int (sb_config_t *self, const char *name);
bool sb_config_bool (sb_config_t *self, const char *name);

/*  Prints the option table as text (--help) or a Markdown table (README). */
void sb_config_print_help (sb_config_t *self, FILE *out, bool markdown);

#endif
