/*  tests/fuzz/fuzz_payload.c — fuzz target for the decoders of the JSON
    inside job results (payload/sb_payload.h): the promote signal, the
    input-required result, the failure and the answer. Any crash, leak or
    sanitizer report is a bug; what decodes must re-encode and decode the
    same, and every refusal must say why. */
#include "sb_payload.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    const char *text = (const char *) data;
    const char *why = NULL;
    (void) sb_payload_is_promote (text, size);

    sb_input_required_t asked;
    int rc = sb_payload_input_required_decode (text, size, &asked, &why);
    assert (rc >= -1 && rc <= 1);
    assert ((rc < 0) == (why != NULL));
    if (rc == 1) {
        char *again = sb_payload_input_required_encode (&asked);
        assert (again);
        sb_input_required_t copy;
        assert (sb_payload_input_required_decode (again, strlen (again), &copy, &why) == 1);
        assert (json_equal (copy.requests, asked.requests) && json_equal (copy.used, asked.used));
        sb_payload_input_required_clear (&copy);
        free (again);
    }
    else
        assert (!asked.requests && !asked.used);
    sb_payload_input_required_clear (&asked);

    sb_failure_t failure;
    rc = sb_payload_failure_decode (text, size, &failure, &why);
    assert ((rc != 0) == (why != NULL));
    if (rc == 0) {
        char *again = sb_payload_failure_encode (&failure);
        assert (again);
        sb_failure_t copy;
        assert (sb_payload_failure_decode (again, strlen (again), &copy, &why) == 0);
        assert (copy.retry_after == failure.retry_after);
        assert (!copy.rpc_error == !failure.rpc_error);
        sb_payload_failure_clear (&copy);
        free (again);
    }
    sb_payload_failure_clear (&failure);

    json_t *result, *error;
    rc = sb_payload_answer_decode (text, size, &result, &error, &why);
    assert ((rc != 0) == (why != NULL));
    assert (rc != 0 || (!result != !error));
    json_decref (result);
    json_decref (error);
    return 0;
}
