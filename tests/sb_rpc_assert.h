/*  tests/sb_rpc_assert.h — an assertion on a JSON-RPC reply shared by the
    end-to-end tests (cmocka; include after <cmocka.h>). */
#ifndef SB_RPC_ASSERT_H_INCLUDED
#define SB_RPC_ASSERT_H_INCLUDED

#include <jansson.h>
#include <string.h>

//  Asserts that `reply` (borrowed) is error `code` whose message holds
//  `text` (NULL: any message).
static inline void
sb_assert_rpc_error (json_t *reply, int code, const char *text)
{
    json_t *error = json_object_get (reply, "error");
    if (!error)
        fail_msg ("expected error %d: %s", code, json_dumps (reply, JSON_COMPACT));
    assert_int_equal (json_integer_value (json_object_get (error, "code")), code);
    const char *message = json_string_value (json_object_get (error, "message"));
    if (text && (!message || !strstr (message, text)))
        fail_msg ("message \"%s\" lacks \"%s\"", message? message: "", text);
}

#endif
