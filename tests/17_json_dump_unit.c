/*  tests/17_json_dump_unit.c — unit tests of sb_json_dump (json/sb_json.h):
    every case is also written by json_dumps (value, JSON_COMPACT |
    JSON_ENCODE_ANY) and the two must agree byte for byte, or both fail:
    scalars, reals at the edges of "%.17g", every escape and control byte,
    UTF-8 valid and not, object order and odd keys, deep nesting, cycles,
    and a few thousand random trees from a fixed seed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json.h"

#define DUMP_FLAGS  (JSON_COMPACT | JSON_ENCODE_ANY)

//  Dumps `value` both ways and fails unless they agree; returns whether
//  the dump succeeded. Takes the reference to `value`.
static int
s_agree_new (json_t *value, const char *what)
{
    assert_non_null (value);
    char *theirs = json_dumps (value, DUMP_FLAGS);
    size_t len = (size_t) -1;
    char *ours = sb_json_dump (value, &len);
    if ((theirs == NULL) != (ours == NULL))
        fail_msg ("%s: jansson %s, ours %s", what, theirs? theirs: "(NULL)", ours? ours: "(NULL)");
    int ok = ours != NULL;
    if (ours) {
        if (strcmp (theirs, ours) != 0)
            fail_msg ("%s: jansson [%s], ours [%s]", what, theirs, ours);
        assert_int_equal (len, strlen (ours));
    }
    free (theirs);
    free (ours);
    json_decref (value);
    return ok;
}

//  As s_agree_new, and the text must be `expected`.
static void
s_expect_new (json_t *value, const char *expected)
{
    char *ours = sb_json_dump (value, NULL);
    assert_non_null (ours);
    assert_string_equal (ours, expected);
    free (ours);
    assert_true (s_agree_new (value, expected));
}

static void
test_scalars (void **state)
{
    s_expect_new (json_true (), "true");
    s_expect_new (json_false (), "false");
    s_expect_new (json_null (), "null");
    s_expect_new (json_integer (0), "0");
    s_expect_new (json_integer (-1), "-1");
    s_expect_new (json_integer (INT64_MAX), "9223372036854775807");
    s_expect_new (json_integer (INT64_MIN), "-9223372036854775808");
    json_int_t powers = 1;
    for (int i = 0; i < 19; i++) {
        assert_true (s_agree_new (json_integer (powers), "power of ten"));
        s_agree_new (json_integer (powers - 1), "nines");
        s_agree_new (json_integer (-powers), "negative power of ten");
        if (i < 18)
            powers *= 10;
    }
    assert_null (sb_json_dump (NULL, NULL));
}

static void
test_reals (void **state)
{
    s_expect_new (json_real (0.1), "0.10000000000000001");
    s_expect_new (json_real (1e20), "1e20");
    s_expect_new (json_real (1e-7), "9.9999999999999995e-8");
    s_expect_new (json_real (1.5e300), "1.5000000000000001e300");
    s_expect_new (json_real (-0.0), "-0.0");
    s_expect_new (json_real (0.0), "0.0");
    s_expect_new (json_real (100.0), "100.0");
    s_expect_new (json_real (3.0), "3.0");
    s_expect_new (json_real (-3.0), "-3.0");
    s_expect_new (json_real (1e16), "10000000000000000.0");
    s_expect_new (json_real (1e17), "1e17");
    s_expect_new (json_real (123456789012345678.0), "1.2345678901234568e17");
    s_expect_new (json_real (DBL_MIN), "2.2250738585072014e-308");
    s_expect_new (json_real (DBL_MAX), "1.7976931348623157e308");
    s_expect_new (json_real (5e-324), "4.9406564584124654e-324");
    s_expect_new (json_real (1e-5), "1.0000000000000001e-5");
    s_expect_new (json_real (0.0001), "0.0001");
    s_expect_new (json_real (-1.5), "-1.5");
    const double more [] = {
        99999999999999999.0, 99999999999999984.0, -99999999999999984.0, 9007199254740993.0,
        9007199254740992.0, 4503599627370495.5, 1e15 + 0.5, 0.5, 1.0 / 3, 2.0 / 3, 1e-300,
        -1e-300, 123.456, 1e22, 1e23, 1e308, 1.7976931348623157e308 / 3, -DBL_MIN / 7,
        1e-4, 9.999999999999999e-5, 1e21, 1e-1, 65536.0, 4294967296.0, -9.2233720368547758e18,
    };
    for (size_t i = 0; i < sizeof more / sizeof more [0]; i++)
        assert_true (s_agree_new (json_real (more [i]), "real"));
}

static void
test_escapes (void **state)
{
    s_expect_new (json_string ("\"\\/\b\f\n\r\t"), "\"\\\"\\\\/\\b\\f\\n\\r\\t\"");
    s_expect_new (json_string (""), "\"\"");
    s_expect_new (json_string ("plain text, no escapes"), "\"plain text, no escapes\"");
    s_expect_new (json_stringn ("\x1f\x7f", 2), "\"\\u001F\x7f\"");
    s_expect_new (json_stringn ("a\0b", 3), "\"a\\u0000b\"");
    //  Every control byte alone, at the start, middle and end of a run.
    for (int c = 0; c < 0x20; c++) {
        char text [8] = { (char) c, 'x', (char) c, 'y', 'z', (char) c };
        char what [32];
        snprintf (what, sizeof what, "control 0x%02X", c);
        assert_true (s_agree_new (json_stringn (text, 1), what));
        assert_true (s_agree_new (json_stringn (text, 6), what));
    }
    //  Escapes back to back and around multi-byte characters.
    s_agree_new (json_string ("\n\n\"\"\\\\\t\xc3\xa9\n\xf0\x9f\x98\x80\x01"), "runs");
}

static void
test_utf8 (void **state)
{
    s_expect_new (json_string ("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    s_expect_new (json_string ("\xe2\x82\xac \xe2\x80\xa8 \xef\xbf\xbf"),
                  "\"\xe2\x82\xac \xe2\x80\xa8 \xef\xbf\xbf\"");
    s_expect_new (json_string ("\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf0\x90\x80\x80"),
                  "\"\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xf0\x90\x80\x80\"");
    s_expect_new (json_string ("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"),
                  "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\"");
    //  Not UTF-8: both refuse, wherever the bad bytes are.
    const char *bad [] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41", "\xe0\x80\x80",
        "\xe0\x9f\xbf", "\xe2\x82", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x80\x80\x80",
        "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8\x88\x80\x80\x80",
        "\xfe", "\xff", "\xf0\x9f\x98", "\xe2\x28\xa1", "\xc3\xa9\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char text [32];
        size_t len = strlen (bad [i]);
        assert_int_equal (s_agree_new (json_stringn_nocheck (bad [i], len), bad [i]), 0);
        snprintf (text, sizeof text, "ok\n%s", bad [i]);
        assert_int_equal (s_agree_new (json_stringn_nocheck (text, strlen (text)), bad [i]), 0);
        snprintf (text, sizeof text, "%s\"ok", bad [i]);
        assert_int_equal (s_agree_new (json_stringn_nocheck (text, strlen (text)), bad [i]), 0);
        //  Deep inside a tree, a bad string fails the whole dump.
        json_t *tree = json_pack ("{s:[i,{s:s}]}", "a", 1, "b", "c");
        json_array_append_new (json_object_get (tree, "a"), json_stringn_nocheck (bad [i], len));
        assert_int_equal (s_agree_new (tree, bad [i]), 0);
    }
}

static void
test_containers (void **state)
{
    s_expect_new (json_object (), "{}");
    s_expect_new (json_array (), "[]");
    s_expect_new (json_pack ("[[],{},[[]],{s:{}}]", "a"), "[[],{},[[]],{\"a\":{}}]");
    s_expect_new (json_pack ("{s:i,s:[i,f,b,n],s:{s:s}}", "z", 1, "a", 2, 0.5, 1, "m", "k", "v"),
                  "{\"z\":1,\"a\":[2,0.5,true,null],\"m\":{\"k\":\"v\"}}");
    //  Insertion order, also after a replacement and a deletion.
    json_t *object = json_object ();
    for (int i = 0; i < 50; i++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", (i * 37) % 50);
        json_object_set_new (object, key, json_integer (i));
    }
    json_object_set_new (object, "k10", json_string ("replaced"));
    json_object_del (object, "k20");
    assert_true (s_agree_new (object, "ordered object"));
    //  Keys with escapes, a NUL and multi-byte characters.
    object = json_object ();
    json_object_set_new (object, "a\"b\\c\n", json_true ());
    json_object_setn_new_nocheck (object, "nul\0key", 7, json_integer (7));
    json_object_set_new (object, "\x01\x1f", json_null ());
    json_object_set_new (object, "\xc3\xa9\xf0\x9f\x98\x80", json_array ());
    json_object_set_new (object, "", json_object ());
    char *text = sb_json_dump (object, NULL);
    assert_string_equal (text, "{\"a\\\"b\\\\c\\n\":true,\"nul\\u0000key\":7,\"\\u0001\\u001F\":null,"
                               "\"\xc3\xa9\xf0\x9f\x98\x80\":[],\"\":{}}");
    free (text);
    assert_true (s_agree_new (object, "odd keys"));
    //  A key that is not UTF-8 (only json_object_set*_nocheck makes one):
    //  jansson writes no closing quote and carries on; so do we.
    const char *bad_keys [] = { "\xff", "ab\xff", "a\nb\xc3", "x\ty\"z\xed\xa0\x80w" };
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys [0]; i++) {
        object = json_object ();
        json_object_set_new_nocheck (object, bad_keys [i], json_integer (1));
        json_object_set_new (object, "ok", json_integer (2));
        assert_true (s_agree_new (json_pack ("[o]", object), bad_keys [i]));
    }
    object = json_object ();
    json_object_set_new_nocheck (object, "a\n\xff", json_true ());
    s_expect_new (object, "{\"a\\n:true}");
    //  A value shared by two parents is not a cycle.
    json_t *shared = json_pack ("{s:[i,i]}", "x", 1, "y");
    json_t *tree = json_pack ("[O,{s:O},O]", shared, "s", shared, shared);
    json_decref (shared);
    assert_true (s_agree_new (tree, "shared"));
}

static void
test_growth_and_len (void **state)
{
    //  A large string of mixed runs and escapes grows the buffer many times.
    size_t size = 200000;
    char *text = malloc (size);
    assert_non_null (text);
    for (size_t i = 0; i < size; i++)
        text [i] = "abc\n\"\\xyz\x01/"[i % 11];
    json_t *value = json_stringn (text, size);
    size_t len = 0;
    char *ours = sb_json_dump (value, &len);
    assert_non_null (ours);
    assert_int_equal (len, strlen (ours));
    assert_true (len > size);
    free (ours);
    assert_true (s_agree_new (value, "long string"));
    free (text);
    //  Many members.
    json_t *array = json_array ();
    for (int i = 0; i < 20000; i++)
        json_array_append_new (array, i % 2? json_integer (i * 7919): json_string ("s"));
    assert_true (s_agree_new (array, "long array"));
    //  len is the string's length; NULL len is allowed.
    ours = sb_json_dump (json_true (), &len);
    assert_string_equal (ours, "true");
    assert_int_equal (len, 4);
    free (ours);
    ours = sb_json_dump (json_true (), NULL);
    assert_string_equal (ours, "true");
    free (ours);
}

//  An array nested `depth` deep holding `leaf`.
static json_t *
s_nest (int depth, json_t *leaf, json_t **innermost)
{
    json_t *top = leaf;
    *innermost = NULL;
    for (int i = 0; i < depth; i++) {
        json_t *array = json_array ();
        json_array_append_new (array, top);
        if (!*innermost)
            *innermost = array;
        top = array;
    }
    return top;
}

static void
test_depth_and_cycles (void **state)
{
    json_t *innermost;
    //  Deeper than any parser allows, and past the point where the dump
    //  starts looking for cycles and grows its check twice.
    int depths [] = { 1, SB_JSON_MAX_DEPTH, SB_JSON_MAX_DEPTH + 1, 3 * SB_JSON_MAX_DEPTH, 10000 };
    for (size_t i = 0; i < sizeof depths / sizeof depths [0]; i++)
        assert_true (s_agree_new (s_nest (depths [i], json_integer (5), &innermost), "deep"));
    //  Deep trees with siblings at every level cross the check's threshold
    //  back and forth; one array shared by every level is open many times
    //  over, but never inside itself, so it is no cycle.
    json_t *shared = json_pack ("[[i],{s:[]}]", 1, "k");
    json_t *top = json_array ();
    json_t *at = top;
    for (int i = 0; i < 3000; i++) {
        json_t *next = json_array ();
        json_array_append_new (at, json_pack ("[i]", i));
        json_array_append (at, shared);
        json_array_append_new (at, json_pack ("{s:[i,[s],O],s:o}", "n", i, "x", shared, "next", next));
        json_array_append (at, shared);
        at = next;
    }
    json_decref (shared);
    char *text = sb_json_dump (top, NULL);
    assert_non_null (text);
    assert_true (strlen (text) > 3000 * 40);
    free (text);
    assert_true (s_agree_new (top, "deep with siblings"));

    //  Two arrays in each other (jansson refuses to put one in itself).
    json_t *array = json_array ();
    json_t *other = json_array ();
    json_array_append_new (array, json_integer (1));
    json_array_append (array, other);
    json_array_append (other, array);
    assert_null (sb_json_dump (array, NULL));
    assert_null (json_dumps (array, DUMP_FLAGS));
    assert_null (sb_json_dump (other, NULL));
    json_array_clear (other);
    json_decref (other);
    json_decref (array);
    //  An object in itself, through an array.
    json_t *object = json_object ();
    json_t *inner = json_array ();
    json_object_set_new (object, "a", inner);
    json_array_append (inner, object);
    assert_null (sb_json_dump (object, NULL));
    assert_null (json_dumps (object, DUMP_FLAGS));
    json_array_clear (inner);
    json_decref (object);
    //  A cycle that starts deep down, beneath the depth where checks begin.
    for (int start = 10; start <= 3 * SB_JSON_MAX_DEPTH; start += 3000) {
        json_t *loop = json_object ();
        json_t *tree = s_nest (start, loop, &innermost);
        json_object_set (loop, "again", innermost);
        assert_null (sb_json_dump (tree, NULL));
        assert_null (json_dumps (tree, DUMP_FLAGS));
        json_object_clear (loop);
        json_decref (tree);
    }
}

//  Random trees -------------------------------------------------------------

static uint64_t s_rng = 0x2545F4914F6CDD1Dull;

static uint64_t
s_next (void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static size_t
s_below (size_t n)
{
    return (size_t) (s_next () % n);
}

//  Random bytes: mostly UTF-8 and escapes; with `wild`, any bytes.
static size_t
s_random_text (char *text, size_t size, int wild)
{
    static const char *pieces [] = {
        "a", "Z", " ", "/", "\"", "\\", "\n", "\t", "\x01", "\x1f", "\x7f", "\xc3\xa9",
        "\xe2\x82\xac", "\xe2\x80\xa8", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "hello", "{}[],:",
    };
    size_t len = 0;
    size_t count = s_below (10);
    for (size_t i = 0; i < count && len + 8 < size; i++) {
        if (wild && s_below (4) == 0) {
            text [len++] = (char) s_next ();
            continue;
        }
        if (s_below (6) == 0) {
            text [len++] = 0;
            continue;
        }
        const char *piece = pieces [s_below (sizeof pieces / sizeof pieces [0])];
        size_t n = strlen (piece);
        if (len + n > size)
            break;
        memcpy (text + len, piece, n);
        len += n;
    }
    return len;
}

static double
s_random_real (void)
{
    for (;;) {
        switch (s_below (4)) {
            case 0: {
                uint64_t bits = s_next ();
                double value;
                memcpy (&value, &bits, sizeof value);
                if (isfinite (value))
                    return value;
                break;
            }
            case 1:
                return (double) (int64_t) s_next () / (double) (1ull << s_below (64));
            case 2:
                return (double) ((int64_t) s_next () >> s_below (64));
            default:
                return (double) (int64_t) (s_next () % 2000001) / 1000 - 1000;
        }
    }
}

static json_t *
s_random_value (int depth)
{
    char text [128];
    int kind = (int) s_below (depth > 6? 7: 9);
    if (depth == 0 && s_below (4) > 0)
        kind = 7 + (int) s_below (2);           // mostly a container at the top
    switch (kind) {
        case 0: return json_null ();
        case 1: return json_boolean (s_below (2));
        case 2: {
            int64_t value = (int64_t) s_next ();
            return json_integer (s_below (2)? value >> s_below (64): value);
        }
        case 3: return json_real (s_random_real ());
        case 4:
        case 5:
        case 6: {
            size_t len = s_random_text (text, sizeof text, s_below (6) == 0);
            return json_stringn_nocheck (text, len);
        }
        case 7: {
            json_t *array = json_array ();
            size_t count = s_below (6);
            for (size_t i = 0; i < count; i++)
                json_array_append_new (array, s_random_value (depth + 1));
            return array;
        }
        default: {
            json_t *object = json_object ();
            size_t count = s_below (6);
            for (size_t i = 0; i < count; i++) {
                size_t len = s_random_text (text, sizeof text, s_below (20) == 0);
                json_object_setn_new_nocheck (object, text, len, s_random_value (depth + 1));
            }
            return object;
        }
    }
}

static void
test_random_trees (void **state)
{
    int dumped = 0, refused = 0;
    for (int round = 0; round < 4000; round++) {
        char what [32];
        snprintf (what, sizeof what, "random tree %d", round);
        if (s_agree_new (s_random_value (0), what))
            dumped++;
        else
            refused++;
    }
    print_message ("%d trees dumped, %d refused\n", dumped, refused);
    //  Both outcomes exercised.
    assert_true (dumped > 2000);
    assert_true (refused > 200);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_scalars),
        cmocka_unit_test (test_reals),
        cmocka_unit_test (test_escapes),
        cmocka_unit_test (test_utf8),
        cmocka_unit_test (test_containers),
        cmocka_unit_test (test_growth_and_len),
        cmocka_unit_test (test_depth_and_cycles),
        cmocka_unit_test (test_random_trees),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
