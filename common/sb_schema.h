/*  common/sb_schema.h — the subset of JSON Schema that tool definitions use
    (connectors/README.md): an object schema whose properties each have a
    type, with required, enum, minimum/maximum, exclusiveMinimum/Maximum,
    minLength/maxLength and additionalProperties false.

    Two questions, asked at two times: at load, is a tool's inputSchema
    itself well-formed (sb_schema_validate); at call time, do the arguments
    satisfy it (sb_schema_check). Error sentences name the field and the
    rule; sb_schema_check's are shown to the person calling the tool. */
#ifndef SB_SCHEMA_H_INCLUDED
#define SB_SCHEMA_H_INCLUDED

#include <jansson.h>

/*  Checks that `schema` is an inputSchema this module can enforce: an object
    schema, properties an object whose members each name a known "type",
    required a string array naming only properties, enum an array. Returns
    0, or -1 with *why a new string starting with `where` (caller frees). */
int sb_schema_validate (const json_t *schema, const char *where, char **why);

/*  Checks `value` against `schema` (one that passed sb_schema_validate):
    value must be an object, hold every required member, and each member
    that is a property must meet its type, enum, bounds and lengths; with
    additionalProperties false, no other member is allowed. Returns 0 with
    *error NULL, or -1 with *error a new sentence naming the field and the
    rule, e.g. "Argument 'limit' must be at most 100." (caller frees). */
int sb_schema_check (const json_t *schema, const json_t *value, char **error);

#endif
