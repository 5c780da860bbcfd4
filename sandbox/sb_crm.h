/*  sandbox/sb_crm.h — the sandbox CRM's data: accounts, contacts, leads,
    opportunities and tasks, seeded deterministically from name lists, with
    search, lookup by ID and task creation. Used only by sb-sandbox.

    Records are JSON objects (jansson), so handlers can send them as they are. */
#ifndef SB_CRM_H_INCLUDED
#define SB_CRM_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "sb_attr.h"

#define SB_CRM_ACCOUNTS_SEEDED      300
#define SB_CRM_CONTACTS_SEEDED      1000
#define SB_CRM_LEADS_SEEDED         400
#define SB_CRM_OPPORTUNITIES_SEEDED 500
#define SB_CRM_TASKS_SEEDED         300
#define SB_CRM_MAX_TASKS            20000   /* tasks held at once (seeded + created) */
#define SB_CRM_MAX_FILTERS          4       /* exact-match filters in one search */
#define SB_CRM_MAX_PAGE             100     /* records on one page of a search */

typedef enum {
    SB_CRM_ACCOUNTS = 0,
    SB_CRM_CONTACTS,
    SB_CRM_LEADS,
    SB_CRM_OPPORTUNITIES,
    SB_CRM_TASKS,
    SB_CRM_TYPES                /* number of record types */
} sb_crm_type_t;

typedef struct _sb_crm_t sb_crm_t;

/*  One search: a case-insensitive substring over the type's text fields,
    exact-match filters, and a page. */
typedef struct {
    const char *q;                                  /* NULL or "" = everything */
    const char *filter_names [SB_CRM_MAX_FILTERS];  /* field names */
    const char *filter_values [SB_CRM_MAX_FILTERS]; /* required values */
    size_t filter_count;                            /* entries used */
    size_t offset;                                  /* matches to skip */
    size_t limit;                                   /* matches to return */
} sb_crm_query_t;

/*  Creates the store seeded from `seed` (same seed, same data). */
sb_crm_t *sb_crm_new (unsigned seed) SB_MUST_USE;

/*  Destroys the store and nulls the caller's pointer. Idempotent. */
void sb_crm_destroy (sb_crm_t **self_p);

/*  Parses a collection name ("accounts"…) of `len` bytes. Returns 0 or -1. */
int sb_crm_type_parse (const char *name, size_t len, sb_crm_type_t *type) SB_MUST_USE;

/*  "accounts", and the singular "account" (static strings). */
const char *sb_crm_type_name (sb_crm_type_t type);
const char *sb_crm_type_noun (sb_crm_type_t type);

/*  The exact-match filters a type accepts, NULL-terminated (static). */
const char *const *sb_crm_type_filters (sb_crm_type_t type);

/*  Number of records of `type`. */
size_t sb_crm_count (sb_crm_t *self, sb_crm_type_t type);

/*  The record with `id`, or NULL (borrowed). */
json_t *sb_crm_get (sb_crm_t *self, sb_crm_type_t type, const char *id) SB_MUST_USE;

/*  A page of matches (at most SB_CRM_MAX_PAGE) as the text of a JSON array
    of records (new string, caller frees; its length in *len), the total
    number of matches, and whether more follow the page; NULL when memory
    ran out. `q` matches case-insensitively (ASCII, as in the C locale). */
char *sb_crm_search (sb_crm_t *self, sb_crm_type_t type, const sb_crm_query_t *query,
                     size_t *len, size_t *total, bool *more) SB_MUST_USE;

/*  Validates `input` and creates a task. Returns 0 with *task (borrowed),
    or -1 with *message a new sentence (and *status 422 for invalid input,
    409 when the store is full, 500 when memory ran out). */
int sb_crm_create_task (sb_crm_t *self, const json_t *input, json_t **task,
                        int *status, char **message) SB_MUST_USE;

#endif
