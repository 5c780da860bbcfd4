/*  tests/fuzz/fuzz_json_parse.c — differential fuzz target for json/sb_json
    (sb_json_parse and sb_json_dump) against jansson, whose reader and writer
    they replace on the call path. For any input and each flag set the two
    readers must agree: both refuse it with the same error (text, line,
    column, position), or both accept it and build equal trees whose compact
    text is the same bytes from both writers. The one allowed difference is
    a NUL byte outside a string, which sb_json_parse always refuses and
    jansson sometimes reads as the end of the text.

    libFuzzer target with clang (-DSB_FUZZ=ON); with gcc, ctest replays
    tests/fuzz/corpus/json_parse through tests/fuzz/sb_fuzz_replay.c. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_fuzz.h"
#include "sb_json.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf (stderr, "fuzz_json_parse: invariant failed: %s (line %d)\n", #cond, __LINE__); \
    abort (); } } while (0)

static void
s_compare (const uint8_t *data, size_t size, size_t flags)
{
    const char *text = (const char *) data;
    json_error_t mine, theirs;
    json_t *fast = sb_json_parse (text, size, flags, &mine);
    json_t *slow = json_loadb (text, size, flags, &theirs);
    if (memchr (data, 0, size) && (!fast || !slow)) {
        //  The NUL case: refused here, maybe not by jansson, or by both
        //  for different reasons (jansson may stop reading at the NUL).
        CHECK (fast == NULL);
        json_decref (slow);
        return;
    }
    CHECK ((fast == NULL) == (slow == NULL));
    if (!fast) {
        CHECK (strcmp (mine.text, theirs.text) == 0);
        CHECK (mine.line == theirs.line && mine.column == theirs.column);
        CHECK (mine.position == theirs.position);
        return;
    }
    CHECK (json_equal (fast, slow));
    size_t len = 0;
    char *ours = sb_json_dump (fast, &len);
    char *reference = json_dumps (slow, JSON_COMPACT | JSON_ENCODE_ANY);
    CHECK (ours && reference);
    CHECK (len == strlen (reference) && memcmp (ours, reference, len) == 0);
    //  The text written reads back as the same tree.
    json_t *again = sb_json_parse (ours, len, JSON_DECODE_ANY, NULL);
    CHECK (again && json_equal (again, fast));
    json_decref (again);
    free (ours);
    free (reference);
    json_decref (fast);
    json_decref (slow);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    s_compare (data, size, 0);
    s_compare (data, size, JSON_DECODE_ANY);
    s_compare (data, size, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES);
    return 0;
}
