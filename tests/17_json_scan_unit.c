/*  tests/17_json_scan_unit.c — unit tests of json/sb_json_scan: RFC 8259
    accept and refuse cases, UTF-8 and escapes, the nesting limit, the
    top-level member report, and a differential check against jansson on
    thousands of mutated texts (both must agree on valid/invalid). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json_scan.h"

static int
s_scan (const char *text)
{
    return sb_json_scan (text, strlen (text), NULL, NULL);
}

static void
test_accepts (void **state)
{
    const char *good [] = {
        "{}", "[]", "0", "-0", "1.5e+10", "-12.25E-3", "\"\"", "true", "false", "null",
        " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : null } \n",
        "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"",
        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
        "[[[[[[[[[[1]]]]]]]]]]",
        "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"structuredContent\":{\"n\":2}}",
        NULL };
    for (int i = 0; good [i]; i++)
        if (s_scan (good [i]) != 0)
            fail_msg ("refused valid JSON: %s", good [i]);
}

static void
test_refuses (void **state)
{
    const char *bad [] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1:2}", "[1 2]", "01", "1.", ".5",
        "1e", "-", "+1", "tru", "nul", "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\u0000\"",
        "\"\\ud83d\"", "\"\\ude00\"", "\"\\ud83d\\u0041\"", "{} {}", "[] x", "NaN", "[Infinity]",
        "\"\xc3\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"",
        "{\"a\":}", "[,1]", "{,}", "{\"a\":1 \"b\":2}",
        NULL };
    for (int i = 0; bad [i]; i++)
        if (s_scan (bad [i]) == 0)
            fail_msg ("accepted invalid JSON: %s", bad [i]);
    //  Embedded NUL bytes are not whitespace.
    assert_int_equal (sb_json_scan ("{}\0", 3, NULL, NULL), -1);
    assert_int_equal (sb_json_scan ("\"a\0b\"", 5, NULL, NULL), -1);
    assert_int_equal (sb_json_scan (NULL, 0, NULL, NULL), -1);
}

static void
test_depth_limit (void **state)
{
    char text [2 * (SB_JSON_SCAN_MAX_DEPTH + 1) + 1];
    for (int depth = SB_JSON_SCAN_MAX_DEPTH; depth <= SB_JSON_SCAN_MAX_DEPTH + 1; depth++) {
        memset (text, '[', depth);
        memset (text + depth, ']', depth);
        text [2 * depth] = 0;
        assert_int_equal (s_scan (text), depth <= SB_JSON_SCAN_MAX_DEPTH? 0: -1);
    }
}

static void
test_member (void **state)
{
    char type = 'x';
    const char *text = "{\"meta\":{\"content\":1},\"content\":[1],\"other\":\"content\"}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, '[');
    //  The last of duplicate names wins, as in jansson.
    text = "{\"content\":[],\"content\":{}}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, '{');
    text = "{\"content\":-3}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, '0');
    //  Absent, nested only, or not an object: 0.
    text = "{\"a\":{\"content\":[]}}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, 0);
    text = "[{\"content\":[]}]";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, 0);
    //  A prefix of the name is not the name.
    text = "{\"conten\":[],\"contents\":[]}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), 0);
    assert_int_equal (type, 0);
    //  Invalid text: -1, and no type.
    text = "{\"content\":[}";
    assert_int_equal (sb_json_scan (text, strlen (text), "content", &type), -1);
    assert_int_equal (type, 0);
}

//  Mutates valid seeds byte by byte; the scanner and jansson must agree,
//  except where jansson refuses numbers it cannot store (not a syntax rule).
static void
test_agrees_with_jansson (void **state)
{
    const char *seeds [] = {
        ("{\"content\":[{\"type\":\"text\",\"text\":\"Found 2 accounts\"}],\"structuredContent\":"
         "{\"items\":[{\"id\":\"acc_1\",\"n\":-1.5e3,\"ok\":true,\"x\":null}],\"count\":2}}"),
        "[\"\\u00e9\\ud83d\\ude00\",\"caf\xc3\xa9\",[],{},0,-0.5,1E9,false]",
        "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}},\"s\":\"\\\"q\\\\\"}",
    };
    static const char alphabet [] = "{}[]\",:\\u0123456789.eE+-tfnalsrx \t\n\xc3\xa9\xed\xf0\x80\xbf";
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int compared = 0, valid = 0;
    char text [512];
    for (int round = 0; round < 20000; round++) {
        const char *seed = seeds [round % 3];
        size_t len = strlen (seed);
        memcpy (text, seed, len + 1);
        int edits = 1 + (int) (rng % 3);
        for (int e = 0; e < edits; e++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t at = (size_t) (rng >> 8) % len;
            int op = (int) (rng % 3);
            char c = alphabet [(rng >> 32) % (sizeof alphabet - 1)];
            if (op == 0)
                text [at] = c;                                      // replace
            else
            if (op == 1 && len > 1) {
                memmove (text + at, text + at + 1, len - at);       // delete
                len--;
            }
            else
            if (len + 1 < sizeof text) {
                memmove (text + at + 1, text + at, len - at + 1);   // insert
                text [at] = c;
                len++;
            }
        }
        json_error_t error;
        json_t *parsed = json_loadb (text, len, JSON_DECODE_ANY, &error);
        if (!parsed && (strstr (error.text, "too big") || strstr (error.text, "overflow")))
            continue;
        int ours = sb_json_scan (text, len, NULL, NULL);
        if ((parsed != NULL) != (ours == 0))
            fail_msg ("disagree on %.*s: jansson %s, scan %d", (int) len, text,
                      parsed? "valid": error.text, ours);
        valid += parsed != NULL;
        json_decref (parsed);
        compared++;
    }
    assert_true (compared > 19000);
    assert_true (valid > 1000 && valid < compared - 1000);    // both sides exercised
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_accepts),
        cmocka_unit_test (test_refuses),
        cmocka_unit_test (test_depth_limit),
        cmocka_unit_test (test_member),
        cmocka_unit_test (test_agrees_with_jansson),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
