/*  common/sb_config.c — option tables: defaults, config file, environment,
    command line, validation, and generated help.

    Values are kept as text (one bounded copy per option) and converted on
    read; validation happens once in sb_config_load so readers never fail. */
#include "sb_config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SB_MAX_OPTIONS 128      /* options in one table */

struct _sb_config_t {
    const char *program;            /* name for --help and errors */
    const sb_option_t *options;     /* the table (borrowed) */
    size_t count;                   /* entries in the table */
    char **values;                  /* current value text per option (owned) */
};

sb_config_t *
sb_config_new (const char *program, const sb_option_t *options)
{
    sb_config_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->program = program;
    self->options = options;
    while (options [self->count].name && self->count < SB_MAX_OPTIONS)
        self->count++;
    self->values = calloc (self->count ? self->count : 1, sizeof (char *));
    if (!self->values) {
        free (self);
        return NULL;
    }
    return self;
}

void
sb_config_destroy (sb_config_t **self_p)
{
    sb_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->values [i]);
    free (self->values);
    free (self);
    *self_p = NULL;
}

static ssize_t
s_find (sb_config_t *self, const char *name, size_t name_len)
{
    for (size_t i = 0; i < self->count; i++)
        if (strlen (self->options [i].name) == name_len
        &&  strncmp (self->options [i].name, name, name_len) == 0)
            return (ssize_t) i;
    return -1;
}

static int
s_parse_long (const char *text, long *out)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    long value = strtol (text, &end, 10);
    if (errno || *end)
        return -1;
    *out = value;
    return 0;
}

static int
s_parse_bool (const char *text, bool *out)
{
    static const char *yes [] = { "1", "true", "yes", "on", NULL };
    static const char *no [] = { "0", "false", "no", "off", NULL };
    for (int i = 0; yes [i]; i++) {
        if (strcasecmp (text, yes [i]) == 0) { *out = true; return 0; }
        if (strcasecmp (text, no [i]) == 0) { *out = false; return 0; }
    }
    return -1;
}

//  Sets option `index` to `value` after checking type, bounds and length.
//  `origin` says where the value came from, for the error message.
static int
s_set (sb_config_t *self, size_t index, const char *value, const char *origin)
{
    const sb_option_t *opt = &self->options [index];
    if (strlen (value) > SB_MAX_CONFIG_VALUE) {
        fprintf (stderr, "%s: %s: value of '%s' is longer than %d bytes\n",
                 self->program, origin, opt->name, SB_MAX_CONFIG_VALUE);
        return -1;
    }
    if (opt->type == SB_OPT_INT) {
        long number;
        if (s_parse_long (value, &number) || number < opt->min || number > opt->max) {
            fprintf (stderr, "%s: %s: '%s' must be a whole number from %ld to %ld, not '%s'\n",
                     self->program, origin, opt->name, opt->min, opt->max, value);
            return -1;
        }
    }
    else if (opt->type == SB_OPT_BOOL) {
        bool flag;
        if (s_parse_bool (value, &flag)) {
            fprintf (stderr, "%s: %s: '%s' must be true or false, not '%s'\n",
                     self->program, origin, opt->name, value);
            return -1;
        }
    }
    char *copy = strdup (value);
    if (!copy)
        return -1;
    free (self->values [index]);
    self->values [index] = copy;
    return 0;
}

static char *
s_trim (char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    size_t len = strlen (text);
    while (len && (text [len - 1] == ' ' || text [len - 1] == '\t'
                || text [len - 1] == '\r' || text [len - 1] == '\n'))
        text [--len] = 0;
    return text;
}

static int
s_load_file (sb_config_t *self, const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "%s: cannot open config file '%s': %s\n",
                 self->program, path, strerror (errno));
        return -1;
    }
    int rc = 0;
    char line [SB_MAX_CONFIG_VALUE + 256];
    size_t total = 0;
    int lineno = 0;
    while (fgets (line, sizeof line, file)) {
        lineno++;
        total += strlen (line);
        char origin [512];
        snprintf (origin, sizeof origin, "%s:%d", path, lineno);
        if (total > SB_MAX_CONFIG_FILE) {
            fprintf (stderr, "%s: %s: config file is larger than %d bytes\n",
                     self->program, origin, SB_MAX_CONFIG_FILE);
            rc = -1;
            break;
        }
        char *text = s_trim (line);
        if (*text == 0 || *text == '#')
            continue;
        char *eq = strchr (text, '=');
        if (!eq) {
            fprintf (stderr, "%s: %s: expected 'name = value'\n", self->program, origin);
            rc = -1;
            break;
        }
        *eq = 0;
        char *name = s_trim (text);
        char *value = s_trim (eq + 1);
        ssize_t index = s_find (self, name, strlen (name));
        if (index < 0) {
            fprintf (stderr, "%s: %s: unknown option '%s'\n", self->program, origin, name);
            rc = -1;
            break;
        }
        rc = s_set (self, (size_t) index, value, origin);
        if (rc)
            break;
    }
    fclose (file);
    return rc;
}

int
sb_config_load (sb_config_t *self, int argc, char **argv)
{
    //  1. defaults
    for (size_t i = 0; i < self->count; i++)
        if (self->options [i].def && s_set (self, i, self->options [i].def, "default"))
            return -1;

    //  2. config file named on the command line (read before other flags)
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "-h") == 0) {
            sb_config_print_help (self, stdout, false);
            return 1;
        }
        if (strcmp (argv [i], "--help-markdown") == 0) {
            sb_config_print_help (self, stdout, true);
            return 1;
        }
        const char *path = NULL;
        if (strcmp (argv [i], "--config") == 0 && i + 1 < argc)
            path = argv [i + 1];
        else if (strncmp (argv [i], "--config=", 9) == 0)
            path = argv [i] + 9;
        if (path && s_load_file (self, path))
            return -1;
    }

    //  3. environment
    for (size_t i = 0; i < self->count; i++) {
        const char *env = self->options [i].env;
        const char *value = env ? getenv (env) : NULL;
        if (value && s_set (self, i, value, env))
            return -1;
    }

    //  4. command line
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (strncmp (arg, "--", 2) != 0) {
            fprintf (stderr, "%s: unexpected argument '%s' (try --help)\n", self->program, arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr (name, '=');
        size_t name_len = eq ? (size_t) (eq - name) : strlen (name);
        const char *value = eq ? eq + 1 : NULL;
        if (name_len == 6 && strncmp (name, "config", 6) == 0) {
            if (!value)
                i++;
            continue;
        }
        ssize_t index = s_find (self, name, name_len);
        if (index < 0) {
            fprintf (stderr, "%s: unknown option '--%.*s' (try --help)\n",
                     self->program, (int) name_len, name);
            return -1;
        }
        if (!value) {
            if (self->options [index].type == SB_OPT_BOOL
            &&  (i + 1 >= argc || strncmp (argv [i + 1], "--", 2) == 0))
                value = "true";         //  a bare boolean flag
            else if (i + 1 < argc)
                value = argv [++i];
            else {
                fprintf (stderr, "%s: option '--%s' needs a value\n", self->program, name);
                return -1;
            }
        }
        if (s_set (self, (size_t) index, value, "command line"))
            return -1;
    }
    return 0;
}

static size_t
s_index (sb_config_t *self, const char *name)
{
    ssize_t index = s_find (self, name, strlen (name));
    assert (index >= 0 && "option not in the table");
    return (size_t) index;
}

const char *
sb_config_str (sb_config_t *self, const char *name)
{
    const char *value = self->values [s_index (self, name)];
    return value ? value : "";
}

long
sb_config_int (sb_config_t *self, const char *name)
{
    long value = 0;
    (void) s_parse_long (sb_config_str (self, name), &value);
    return value;
}

bool
sb_config_bool (sb_config_t *self, const char *name)
{
    bool value = false;
    (void) s_parse_bool (sb_config_str (self, name), &value);
    return value;
}

void
sb_config_print_help (sb_config_t *self, FILE *out, bool markdown)
{
    static const char *types [] = { "text", "number", "bool" };
    if (markdown) {
        fprintf (out, "| option | environment | default | meaning |\n|---|---|---|---|\n");
        for (size_t i = 0; i < self->count; i++) {
            const sb_option_t *opt = &self->options [i];
            fprintf (out, "| `--%s` | `%s` | `%s` | %s", opt->name, opt->env ? opt->env : "",
                     opt->def ? opt->def : "", opt->help ? opt->help : "");
            if (opt->type == SB_OPT_INT)
                fprintf (out, " (%ld–%ld)", opt->min, opt->max);
            fprintf (out, " |\n");
        }
        return;
    }
    fprintf (out, "usage: %s [--config FILE] [--option value …]\n\n", self->program);
    fprintf (out, "Each option can also be set in the config file ('name = value') or by its\n"
                  "environment variable; the command line wins, then the environment.\n\n");
    for (size_t i = 0; i < self->count; i++) {
        const sb_option_t *opt = &self->options [i];
        fprintf (out, "  --%-22s %s\n", opt->name, opt->help ? opt->help : "");
        fprintf (out, "  %-24s %s", "", types [opt->type]);
        if (opt->type == SB_OPT_INT)
            fprintf (out, " %ld..%ld", opt->min, opt->max);
        if (opt->def)
            fprintf (out, ", default '%s'", opt->def);
        if (opt->env)
            fprintf (out, ", env %s", opt->env);
        fprintf (out, "\n");
    }
}
