/*  sandbox/sb_crm.c — the sandbox CRM's records: seeded at start from name
    lists with a fixed pseudo-random sequence (the same seed always gives
    the same data, so tests and benchmarks can rely on it), searched by
    case-insensitive substring, looked up by ID through a hash index.

    Records never change once added, so each keeps what a search reads made
    once: its JSON text and its search fields in lower case. A search is
    then a substring scan over short strings and a copy of the page's
    texts, no JSON walked or written per request. */
#include "sb_crm.h"
#include "sb_attr.h"
#include "sb_json.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CRM_MAX_TITLE 200    /* task title, characters */
#define SB_CRM_MAX_NOTES 2000   /* task notes, characters */
#define SB_CRM_SEARCH_FIELDS 3  /* text fields a q= search looks in, at most */

//  What a search reads of one record, made when the record is added.
typedef struct {
    char *json;                             /* the record as compact JSON */
    size_t json_len;
    char *search [SB_CRM_SEARCH_FIELDS];    /* search fields, lower case; NULL if absent */
} s_entry_t;

struct _sb_crm_t {
    json_t *records [SB_CRM_TYPES];     /* arrays of record objects, in ID order */
    json_t *index [SB_CRM_TYPES];       /* objects: id -> record (borrowed refs) */
    s_entry_t *entries [SB_CRM_TYPES];  /* parallel to records */
    size_t capacity [SB_CRM_TYPES];     /* entries allocated */
    uint64_t rng;                       /* xorshift64* state */
};

#define COUNT(a) (sizeof (a) / sizeof ((a) [0]))

static const char *s_company_roots [] = {
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
    "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Oceanic", "Monarch", "Nakatomi",
    "Pied Piper", "Aperture", "Black Mesa", "Massive Dynamic", "Blue Sun", "Virtucon",
    "Dunder Mifflin", "Bluth", "Prestige", "Sterling", "Northwind", "Contoso",
    "Fabrikam", "Gekko", "Wernham"
};
static const char *s_company_suffixes [] = {
    "Corp", "Industries", "Systems", "Logistics", "Labs", "Holdings", "Group",
    "Partners", "Foods", "Energy", "Health", "Software"
};
static const char *s_industries [] = {
    "Manufacturing", "Retail", "Software", "Healthcare", "Energy", "Logistics",
    "Financial Services", "Education", "Media", "Hospitality", "Construction", "Agriculture"
};
static const char *s_cities [][2] = {
    { "Berlin", "Germany" }, { "London", "United Kingdom" }, { "Paris", "France" },
    { "New York", "United States" }, { "San Francisco", "United States" },
    { "Chicago", "United States" }, { "Toronto", "Canada" }, { "Amsterdam", "Netherlands" },
    { "Madrid", "Spain" }, { "Milan", "Italy" }, { "Zürich", "Switzerland" },
    { "Stockholm", "Sweden" }, { "Tokyo", "Japan" }, { "Sydney", "Australia" },
    { "São Paulo", "Brazil" }, { "Dublin", "Ireland" }
};
static const char *s_first_names [] = {
    "Alice", "Bob", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kara", "Liam", "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
    "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoe", "Amara", "Bruno", "Chloé", "Dmitri",
    "Emma", "Felix", "Gita", "Hannah", "Ivan", "Julia", "Kenji", "Lucia", "Mateo", "Nora"
};
static const char *s_last_names [] = {
    "Smith", "Müller", "Garcia", "Chen", "Okafor", "Rossi", "Novak", "Tanaka", "Dubois",
    "Kowalski", "Silva", "Johansson", "Patel", "O'Brien", "Nguyen", "Schmidt", "Haddad",
    "Larsen", "Kim", "Moreau", "Andersen", "Fischer", "Costa", "Ivanova", "Brown", "Wilson",
    "Yilmaz", "Lopez", "Becker", "Martin", "Sato", "Khan", "Walsh", "Nakamura", "Hughes",
    "Weber", "Santos", "Meyer", "Clarke", "Ahmed"
};
static const char *s_titles [] = {
    "CEO", "CTO", "CFO", "VP Sales", "VP Engineering", "Head of Procurement",
    "Operations Manager", "IT Director", "Account Manager", "Product Manager",
    "Office Manager", "Head of Marketing"
};
static const char *s_owners [] = { "Dana Scully", "Fox Mulder", "Walter Skinner", "Monica Reyes" };
static const char *s_lead_status [] = { "new", "working", "qualified", "unqualified" };
static const char *s_lead_sources [] = { "web", "referral", "event", "cold_call", "partner" };
static const char *s_stages [] = {
    "prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"
};
static const int s_stage_probability [] = { 10, 25, 50, 75, 100, 0 };
static const char *s_deals [] = {
    "Platform renewal", "Expansion", "Pilot", "Enterprise upgrade", "Support contract",
    "New region rollout", "Analytics add-on", "Training package"
};
static const char *s_task_verbs [] = {
    "Call", "Email", "Send proposal to", "Follow up with", "Book a demo with",
    "Prepare contract for", "Check in with"
};
static const char *s_priorities [] = { "low", "normal", "high" };

static const char *s_type_names [] = { "accounts", "contacts", "leads", "opportunities", "tasks" };
static const char *s_type_nouns [] = { "account", "contact", "lead", "opportunity", "task" };
static const char *s_id_prefixes [] = { "acc", "con", "lead", "opp", "task" };

//  Fields the q= search looks in, per type.
static const char *const s_search_fields [SB_CRM_TYPES][SB_CRM_SEARCH_FIELDS + 1] = {
    { "name", "website", NULL },
    { "name", "email", "account_name", NULL },
    { "name", "email", "company", NULL },
    { "name", "account_name", NULL },
    { "title", NULL },
};
static const char *const s_filters [SB_CRM_TYPES][3] = {
    { "industry", NULL },
    { "account_id", NULL },
    { "status", NULL },
    { "stage", "account_id", NULL },
    { "status", "account_id", NULL },
};

static uint64_t
s_next (sb_crm_t *self)
{
    self->rng ^= self->rng >> 12;
    self->rng ^= self->rng << 25;
    self->rng ^= self->rng >> 27;
    return self->rng * 2685821657736338717ULL;
}

static size_t
s_pick (sb_crm_t *self, size_t n)
{
    return (size_t) (s_next (self) % n);
}

//  "2025-03-14" for `days` after 2025-01-01 (any non-negative count).
static void
s_date (long days, char out [16])
{
    static const int month_days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int year = 2025, month = 0;
    for (;;) {
        int length = month_days [month] + (month == 1 && year % 4 == 0);
        if (days < length)
            break;
        days -= length;
        if (++month == 12) {
            month = 0;
            year++;
        }
    }
    snprintf (out, 16, "%04d-%02d-%02d", year % 10000, (month + 1) % 100, ((int) days + 1) % 100);
}

//  Lower-case ASCII letters and digits of `name`, for domains and emails.
static void
s_slug (const char *name, char *out, size_t size)
{
    size_t at = 0;
    for (const char *p = name; *p && at + 1 < size; p++)
        if (isalnum ((unsigned char) *p))
            out [at++] = (char) tolower ((unsigned char) *p);
    out [at] = 0;
}

//  ASCII lower case, inline: tolower () is a call through the locale table.
static inline int
s_lower (int c)
{
    return c >= 'A' && c <= 'Z'? c + ('a' - 'A'): c;
}

static void
s_entry_free (s_entry_t *entry)
{
    free (entry->json);
    for (int f = 0; f < SB_CRM_SEARCH_FIELDS; f++)
        free (entry->search [f]);
}

//  Fills `entry` from `record`; returns 0, or -1 (nothing held) when memory
//  ran out.
static int
s_entry_make (s_entry_t *entry, sb_crm_type_t type, const json_t *record)
{
    size_t json_len;
    *entry = (s_entry_t) { .json = sb_json_dump (record, &json_len) };
    if (!entry->json)
        return -1;
    entry->json_len = json_len;
    for (int f = 0; s_search_fields [type][f]; f++) {
        const char *value = json_string_value (json_object_get (record, s_search_fields [type][f]));
        if (!value)
            continue;
        entry->search [f] = strdup (value);
        if (!entry->search [f]) {
            s_entry_free (entry);
            return -1;
        }
        for (char *p = entry->search [f]; *p; p++)
            *p = (char) s_lower ((unsigned char) *p);
    }
    return 0;
}

//  Adds `record` (taken) under the next ID; returns the stored record, or
//  NULL when memory ran out (nothing added).
static json_t *
s_add (sb_crm_t *self, sb_crm_type_t type, json_t *record)
{
    size_t count = json_array_size (self->records [type]);
    if (count == self->capacity [type]) {
        size_t capacity = count? count * 2: 64;
        s_entry_t *entries = realloc (self->entries [type], capacity * sizeof *entries);
        if (!entries) {
            json_decref (record);
            return NULL;
        }
        self->entries [type] = entries;
        self->capacity [type] = capacity;
    }
    char id [32];
    snprintf (id, sizeof id, "%s_%04zu", s_id_prefixes [type], count + 1);
    //  The ID first, then the fields, as a person reading the JSON expects.
    json_t *ordered = json_pack ("{s:s}", "id", id);
    if (ordered)
        json_object_update (ordered, record);
    json_decref (record);
    if (!ordered || s_entry_make (&self->entries [type][count], type, ordered)) {
        json_decref (ordered);
        return NULL;
    }
    if (json_array_append (self->records [type], ordered)) {
        s_entry_free (&self->entries [type][count]);
        json_decref (ordered);
        return NULL;
    }
    json_object_set (self->index [type], id, ordered);
    json_decref (ordered);
    return ordered;
}

static void
s_seed_accounts (sb_crm_t *self)
{
    for (size_t i = 0; i < SB_CRM_ACCOUNTS_SEEDED; i++) {
        char name [128], slug [128], website [160], phone [32], created [16];
        snprintf (name, sizeof name, "%s %s", s_company_roots [i % COUNT (s_company_roots)],
                  s_company_suffixes [(i / COUNT (s_company_roots) + i) % COUNT (s_company_suffixes)]);
        s_slug (name, slug, sizeof slug);
        snprintf (website, sizeof website, "https://www.%s.example", slug);
        snprintf (phone, sizeof phone, "+1-555-%04zu", s_pick (self, 10000));
        s_date ((long) s_pick (self, 300), created);
        size_t city = s_pick (self, COUNT (s_cities));
        size_t employees = 5 + s_pick (self, 20000);
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s}",
            "name", name,
            "industry", s_industries [s_pick (self, COUNT (s_industries))],
            "website", website,
            "phone", phone,
            "city", s_cities [city][0],
            "country", s_cities [city][1],
            "employees", (json_int_t) employees,
            "annual_revenue", (json_int_t) (employees * (50000 + s_pick (self, 200000))),
            "owner", s_owners [s_pick (self, COUNT (s_owners))],
            "created_at", created);
        s_add (self, SB_CRM_ACCOUNTS, record);
    }
}

//  A person's name, first and last, from the lists.
static void
s_person (sb_crm_t *self, const char **first, const char **last)
{
    *first = s_first_names [s_pick (self, COUNT (s_first_names))];
    *last = s_last_names [s_pick (self, COUNT (s_last_names))];
}

static void
s_seed_contacts (sb_crm_t *self)
{
    for (size_t i = 0; i < SB_CRM_CONTACTS_SEEDED; i++) {
        const char *first, *last;
        s_person (self, &first, &last);
        json_t *account = json_array_get (self->records [SB_CRM_ACCOUNTS],
                                          s_pick (self, SB_CRM_ACCOUNTS_SEEDED));
        const char *account_name = json_string_value (json_object_get (account, "name"));
        char name [128], first_slug [64], last_slug [64], domain [128], email [320], phone [32];
        snprintf (name, sizeof name, "%s %s", first, last);
        s_slug (first, first_slug, sizeof first_slug);
        s_slug (last, last_slug, sizeof last_slug);
        s_slug (account_name, domain, sizeof domain);
        snprintf (email, sizeof email, "%s.%s%zu@%s.example", first_slug, last_slug, i + 1, domain);
        snprintf (phone, sizeof phone, "+1-555-%04zu", s_pick (self, 10000));
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s}",
            "first_name", first, "last_name", last, "name", name,
            "title", s_titles [s_pick (self, COUNT (s_titles))],
            "email", email, "phone", phone,
            "account_id", json_object_get (account, "id"),
            "account_name", account_name);
        s_add (self, SB_CRM_CONTACTS, record);
    }
}

static void
s_seed_leads (sb_crm_t *self)
{
    for (size_t i = 0; i < SB_CRM_LEADS_SEEDED; i++) {
        const char *first, *last;
        s_person (self, &first, &last);
        char name [128], company [128], slug [128], first_slug [64], email [320], created [16];
        snprintf (name, sizeof name, "%s %s", first, last);
        //  Leads' companies are not (yet) accounts: other suffixes.
        snprintf (company, sizeof company, "%s %s",
                  s_last_names [s_pick (self, COUNT (s_last_names))],
                  (const char *[]) { "& Sons", "Consulting", "Trading", "Studio", "Ventures" }
                  [s_pick (self, 5)]);
        s_slug (company, slug, sizeof slug);
        s_slug (first, first_slug, sizeof first_slug);
        snprintf (email, sizeof email, "%s%zu@%s.example", first_slug, i + 1, slug);
        s_date ((long) s_pick (self, 365), created);
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
            "first_name", first, "last_name", last, "name", name, "company", company,
            "title", s_titles [s_pick (self, COUNT (s_titles))], "email", email,
            "status", s_lead_status [s_pick (self, COUNT (s_lead_status))],
            "source", s_lead_sources [s_pick (self, COUNT (s_lead_sources))],
            "created_at", created);
        s_add (self, SB_CRM_LEADS, record);
    }
}

static void
s_seed_opportunities (sb_crm_t *self)
{
    for (size_t i = 0; i < SB_CRM_OPPORTUNITIES_SEEDED; i++) {
        json_t *account = json_array_get (self->records [SB_CRM_ACCOUNTS],
                                          s_pick (self, SB_CRM_ACCOUNTS_SEEDED));
        const char *account_name = json_string_value (json_object_get (account, "name"));
        char name [192], close [16];
        snprintf (name, sizeof name, "%s - %s", account_name,
                  s_deals [s_pick (self, COUNT (s_deals))]);
        size_t stage = s_pick (self, COUNT (s_stages));
        s_date (30 + (long) s_pick (self, 540), close);
        json_t *record = json_pack ("{s:s, s:O, s:s, s:s, s:I, s:s, s:i, s:s, s:s}",
            "name", name,
            "account_id", json_object_get (account, "id"),
            "account_name", account_name,
            "stage", s_stages [stage],
            "amount", (json_int_t) (5000 + s_pick (self, 4950) * 100),
            "currency", "USD",
            "probability", s_stage_probability [stage],
            "close_date", close,
            "owner", s_owners [s_pick (self, COUNT (s_owners))]);
        s_add (self, SB_CRM_OPPORTUNITIES, record);
    }
}

static void
s_seed_tasks (sb_crm_t *self)
{
    for (size_t i = 0; i < SB_CRM_TASKS_SEEDED; i++) {
        json_t *contact = json_array_get (self->records [SB_CRM_CONTACTS],
                                          s_pick (self, SB_CRM_CONTACTS_SEEDED));
        char title [256], due [16], created [16];
        snprintf (title, sizeof title, "%s %s (%s)",
                  s_task_verbs [s_pick (self, COUNT (s_task_verbs))],
                  json_string_value (json_object_get (contact, "name")),
                  json_string_value (json_object_get (contact, "account_name")));
        s_date ((long) s_pick (self, 400), due);
        s_date ((long) s_pick (self, 200), created);
        json_t *record = json_pack ("{s:s, s:s, s:s, s:s, s:O, s:O, s:s, s:s}",
            "title", title,
            "status", s_pick (self, 3) ? "open" : "completed",
            "priority", s_priorities [s_pick (self, COUNT (s_priorities))],
            "due_date", due,
            "account_id", json_object_get (contact, "account_id"),
            "contact_id", json_object_get (contact, "id"),
            "notes", "",
            "created_at", created);
        s_add (self, SB_CRM_TASKS, record);
    }
}

sb_crm_t *
sb_crm_new (unsigned seed)
{
    sb_crm_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t) seed + 1);
    for (int type = 0; type < SB_CRM_TYPES; type++) {
        self->records [type] = json_array ();
        self->index [type] = json_object ();
    }
    s_seed_accounts (self);
    s_seed_contacts (self);
    s_seed_leads (self);
    s_seed_opportunities (self);
    s_seed_tasks (self);
    return self;
}

void
sb_crm_destroy (sb_crm_t **self_p)
{
    sb_crm_t *self = *self_p;
    if (!self)
        return;
    for (int type = 0; type < SB_CRM_TYPES; type++) {
        for (size_t i = 0; i < json_array_size (self->records [type]); i++)
            s_entry_free (&self->entries [type][i]);
        free (self->entries [type]);
        json_decref (self->records [type]);
        json_decref (self->index [type]);
    }
    free (self);
    *self_p = NULL;
}

int
sb_crm_type_parse (const char *name, size_t len, sb_crm_type_t *type)
{
    for (int i = 0; i < SB_CRM_TYPES; i++)
        if (strlen (s_type_names [i]) == len && memcmp (s_type_names [i], name, len) == 0) {
            *type = (sb_crm_type_t) i;
            return 0;
        }
    return -1;
}

const char *
sb_crm_type_name (sb_crm_type_t type)
{
    return s_type_names [type];
}

const char *
sb_crm_type_noun (sb_crm_type_t type)
{
    return s_type_nouns [type];
}

const char *const *
sb_crm_type_filters (sb_crm_type_t type)
{
    return s_filters [type];
}

size_t
sb_crm_count (sb_crm_t *self, sb_crm_type_t type)
{
    return json_array_size (self->records [type]);
}

json_t *
sb_crm_get (sb_crm_t *self, sb_crm_type_t type, const char *id)
{
    return json_object_get (self->index [type], id);
}

//  `q` is query->q in lower case (NULL or "" when there is none).
static bool
s_matches (sb_crm_t *self, sb_crm_type_t type, size_t at, const sb_crm_query_t *query,
           const char *q)
{
    if (query->filter_count) {
        const json_t *record = json_array_get (self->records [type], at);
        for (size_t i = 0; i < query->filter_count; i++) {
            const char *value = json_string_value (json_object_get (record, query->filter_names [i]));
            if (!value || strcmp (value, query->filter_values [i]))
                return false;
        }
    }
    if (!q || !*q)
        return true;
    const s_entry_t *entry = &self->entries [type][at];
    for (int f = 0; f < SB_CRM_SEARCH_FIELDS; f++)
        if (entry->search [f] && strstr (entry->search [f], q))
            return true;
    return false;
}

char *
sb_crm_search (sb_crm_t *self, sb_crm_type_t type, const sb_crm_query_t *query,
               size_t *len, size_t *total, bool *more)
{
    size_t room = query->limit < SB_CRM_MAX_PAGE? query->limit: SB_CRM_MAX_PAGE;
    size_t page [SB_CRM_MAX_PAGE];      /* indexes of the page's records */
    size_t count = 0;
    size_t bytes = 2;                   /* "[" and "]" */
    char *q = query->q? strdup (query->q): NULL;
    if (query->q && !q)
        return NULL;
    for (char *p = q; p && *p; p++)
        *p = (char) s_lower ((unsigned char) *p);
    *total = 0;
    size_t records = json_array_size (self->records [type]);
    for (size_t at = 0; at < records; at++) {
        if (!s_matches (self, type, at, query, q))
            continue;
        if (*total >= query->offset && count < room) {
            page [count++] = at;
            bytes += self->entries [type][at].json_len + 1;
        }
        (*total)++;
    }
    free (q);
    *more = *total > query->offset + room;
    char *text = malloc (bytes + 1);
    if (!text)
        return NULL;
    size_t used = 0;
    text [used++] = '[';
    for (size_t i = 0; i < count; i++) {
        const s_entry_t *entry = &self->entries [type][page [i]];
        if (i)
            text [used++] = ',';
        memcpy (text + used, entry->json, entry->json_len);
        used += entry->json_len;
    }
    text [used++] = ']';
    text [used] = 0;
    *len = used;
    return text;
}

//  Number of UTF-8 characters in a string value.
static size_t
s_chars (const json_t *value)
{
    size_t count = 0;
    const char *text = json_string_value (value);
    for (size_t i = 0; i < json_string_length (value); i++)
        count += ((unsigned char) text [i] & 0xC0) != 0x80;
    return count;
}

static bool
s_valid_date (const char *text)
{
    int year, month, day;
    char tail;
    if (strlen (text) != 10 || text [4] != '-' || text [7] != '-'
    ||  sscanf (text, "%4d-%2d-%2d%c", &year, &month, &day, &tail) != 3)
        return false;
    static const int month_days [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return year >= 1970 && month >= 1 && month <= 12 && day >= 1 && day <= month_days [month - 1];
}

static int
s_invalid (int *status, char **message, const char *text)
{
    *status = 422;
    *message = strdup (text);
    return -1;
}

int
sb_crm_create_task (sb_crm_t *self, const json_t *input, json_t **task,
                    int *status, char **message)
{
    static const char *const allowed [] = {
        "title", "due_date", "priority", "account_id", "contact_id", "notes", NULL
    };
    *task = NULL;
    *message = NULL;
    if (!json_is_object (input))
        return s_invalid (status, message, "The body must be a JSON object.");
    const char *key;
    json_t *value;
    json_object_foreach (sb_unconst (input), key, value) {
        bool known = false;
        for (int i = 0; allowed [i]; i++)
            known |= strcmp (key, allowed [i]) == 0;
        if (!known)
            return s_invalid (status, message, "Unknown field; tasks take title, due_date, "
                              "priority, account_id, contact_id and notes.");
        if (!json_is_string (value))
            return s_invalid (status, message, "Every task field must be a string.");
    }
    json_t *title = json_object_get (input, "title");
    if (!title || s_chars (title) == 0)
        return s_invalid (status, message, "title is required.");
    if (s_chars (title) > SB_CRM_MAX_TITLE)
        return s_invalid (status, message, "title must be at most 200 characters.");
    json_t *due = json_object_get (input, "due_date");
    if (due && !s_valid_date (json_string_value (due)))
        return s_invalid (status, message, "due_date must be a date as YYYY-MM-DD.");
    const char *priority = json_string_value (json_object_get (input, "priority"));
    if (priority && strcmp (priority, "low") && strcmp (priority, "normal")
    &&  strcmp (priority, "high"))
        return s_invalid (status, message, "priority must be low, normal or high.");
    json_t *account_id = json_object_get (input, "account_id");
    if (account_id && !sb_crm_get (self, SB_CRM_ACCOUNTS, json_string_value (account_id)))
        return s_invalid (status, message, "account_id names no account.");
    json_t *contact_id = json_object_get (input, "contact_id");
    if (contact_id && !sb_crm_get (self, SB_CRM_CONTACTS, json_string_value (contact_id)))
        return s_invalid (status, message, "contact_id names no contact.");
    json_t *notes = json_object_get (input, "notes");
    if (notes && s_chars (notes) > SB_CRM_MAX_NOTES)
        return s_invalid (status, message, "notes must be at most 2000 characters.");
    if (json_array_size (self->records [SB_CRM_TASKS]) >= SB_CRM_MAX_TASKS) {
        *status = 409;
        *message = strdup ("The sandbox holds as many tasks as it can; restart it to reset.");
        return -1;
    }
    json_t *record = json_pack ("{s:O, s:s, s:s, s:s}",
                                "title", title, "status", "open",
                                "priority", priority ? priority : "normal",
                                "created_at", "2025-01-01");
    json_object_set_new (record, "due_date", due ? json_incref (due) : json_null ());
    json_object_set_new (record, "account_id", account_id ? json_incref (account_id) : json_null ());
    json_object_set_new (record, "contact_id", contact_id ? json_incref (contact_id) : json_null ());
    json_object_set_new (record, "notes", notes ? json_incref (notes) : json_string (""));
    *task = s_add (self, SB_CRM_TASKS, record);
    if (!*task) {
        *status = 500;
        *message = strdup ("The sandbox ran out of memory.");
        return -1;
    }
    return 0;
}
