/*  tests/17_json_parse_unit.c — unit tests of sb_json_parse (json/sb_json.h)
    against json_loadb, which it replaces: every text is read both ways and
    the two must agree on success, on the tree (json_equal, and json_dumps
    byte for byte, so object key order too) and on the error (text, code,
    line, column, position). Hand-written cases cover each refusal, numbers
    at the edges of json_int_t and double, escapes and surrogates, key order
    and duplicates, the flags, the nesting limit and memory failures; then a
    few thousand texts mutated from valid documents (an API answer and a
    tool result among them) from a fixed seed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_json.h"

#define DUMP_FLAGS  (JSON_COMPACT | JSON_ENCODE_ANY)

//  Whether a NUL byte follows a letter or digit. jansson loses such a NUL
//  (its stream cannot push one back after a number or a word), so accepts
//  "[1\0]" where sb_json_parse refuses, and may report a later error.
static int
s_nul_after_word (const char *text, size_t len)
{
    for (size_t i = 1; i < len; i++)
        if (text [i] == '\0' && ((text [i - 1] >= '0' && text [i - 1] <= '9')
                             ||  (text [i - 1] >= 'a' && text [i - 1] <= 'z')
                             ||  (text [i - 1] >= 'A' && text [i - 1] <= 'Z')))
            return 1;
    return 0;
}

//  Parses `len` bytes both ways with `flags` and fails unless they agree.
//  Returns the tree sb_json_parse built (caller decrefs), NULL if refused;
//  copies our error into *error_out when not NULL.
static json_t *
s_both (const char *text, size_t len, size_t flags, json_error_t *error_out)
{
    json_error_t theirs_error, ours_error;
    json_t *theirs = json_loadb (text, len, flags, &theirs_error);
    json_t *ours = sb_json_parse (text, len, flags, &ours_error);
    if (error_out)
        *error_out = ours_error;
    int nul_after_word = s_nul_after_word (text, len);
    if (theirs && !ours && nul_after_word) {
        json_decref (theirs);
        return NULL;
    }
    if ((theirs != NULL) != (ours != NULL))
        fail_msg ("disagree (flags %zx) on [%.*s]: jansson %s, ours %s", flags, (int) len, text,
                  theirs? "accepts": theirs_error.text, ours? "accepts": ours_error.text);
    assert_string_equal (ours_error.source, "<buffer>");
    if (ours) {
        if (!json_equal (theirs, ours))
            fail_msg ("different trees for [%.*s]", (int) len, text);
        char *theirs_text = json_dumps (theirs, DUMP_FLAGS);
        char *ours_text = json_dumps (ours, DUMP_FLAGS);
        assert_non_null (theirs_text);
        assert_non_null (ours_text);
        if (strcmp (theirs_text, ours_text) != 0)
            fail_msg ("[%.*s] dumps as\n  jansson %s\n  ours    %s", (int) len, text, theirs_text, ours_text);
        free (theirs_text);
        free (ours_text);
        assert_string_equal (ours_error.text, "");
        assert_int_equal (ours_error.position, theirs_error.position);
    }
    else
    if (nul_after_word)
        ;                       // jansson may have read past the NUL to a later error
    else
    if (strcmp (theirs_error.text, ours_error.text) != 0
    ||  json_error_code (&theirs_error) != json_error_code (&ours_error)
    ||  theirs_error.line != ours_error.line || theirs_error.column != ours_error.column
    ||  theirs_error.position != ours_error.position)
        fail_msg ("errors differ on [%.*s]:\n  jansson %s (code %d) %d:%d @%d\n  ours    %s (code %d) %d:%d @%d",
                  (int) len, text,
                  theirs_error.text, json_error_code (&theirs_error), theirs_error.line,
                  theirs_error.column, theirs_error.position,
                  ours_error.text, json_error_code (&ours_error), ours_error.line,
                  ours_error.column, ours_error.position);
    json_decref (theirs);
    return ours;
}

//  As s_both on a C string, for all three flag sets; returns whether it
//  was accepted with JSON_DECODE_ANY.
static int
s_agree (const char *text)
{
    size_t len = strlen (text);
    json_decref (s_both (text, len, 0, NULL));
    json_decref (s_both (text, len, JSON_REJECT_DUPLICATES, NULL));
    json_t *tree = s_both (text, len, JSON_DECODE_ANY, NULL);
    json_decref (s_both (text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL));
    int accepted = tree != NULL;
    json_decref (tree);
    return accepted;
}

//  The text must be refused (with JSON_DECODE_ANY) with `expected` as the
//  error sentence, by both parsers.
static void
s_refuse (const char *text, size_t len, size_t flags, const char *expected)
{
    json_error_t error;
    json_t *tree = s_both (text, len, flags, &error);
    if (tree)
        fail_msg ("accepted [%.*s]", (int) len, text);
    if (expected && strcmp (error.text, expected) != 0)
        fail_msg ("[%.*s]: error '%s', expected '%s'", (int) len, text, error.text, expected);
}

static void
s_refuse_any (const char *text, const char *expected)
{
    s_refuse (text, strlen (text), JSON_DECODE_ANY, expected);
}

static void
test_accepts (void **state)
{
    const char *good [] = {
        "{}", "[]", " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : null } \n",
        "[true,false,null]", "{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"isError\":false}",
        "[\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf\"]",
        "{\"\xc3\xa9t\xc3\xa9\":1,\"\":2,\" \":3}",
        "[[[[[[[[[[1]]]]]]]]]]",
        NULL };
    for (int i = 0; good [i]; i++)
        if (!s_agree (good [i]))
            fail_msg ("refused valid JSON: %s", good [i]);
    //  Scalars only with JSON_DECODE_ANY.
    const char *scalars [] = { "0", "-0", "1.5", "\"\"", "true", "false", "null", " 7 ", NULL };
    for (int i = 0; scalars [i]; i++) {
        assert_true (s_agree (scalars [i]));
        s_refuse (scalars [i], strlen (scalars [i]), 0, NULL);
    }
}

//  s_refuse with NULL expected only checks agreement; this table checks the
//  sentences themselves (jansson's, with the token quoted).
static void
test_refusals (void **state)
{
    s_refuse ("", 0, 0, "'[' or '{' expected near end of file");
    s_refuse ("", 0, JSON_DECODE_ANY, "unexpected token near end of file");
    s_refuse (" \n\t ", 4, JSON_DECODE_ANY, "unexpected token near end of file");
    s_refuse ("\"x\"", 3, 0, "'[' or '{' expected near '\"x\"'");
    s_refuse_any ("[1,]", "unexpected token near ']'");
    s_refuse_any ("[1 2]", "']' expected near '2'");
    s_refuse_any ("[1,", "']' expected near end of file");
    s_refuse_any ("[", "']' expected near end of file");
    s_refuse_any ("{", "string or '}' expected near end of file");
    s_refuse_any ("{\"a\":1,}", "string or '}' expected near '}'");
    s_refuse_any ("{1:2}", "string or '}' expected near '1'");
    s_refuse_any ("{\"a\" 1}", "':' expected near '1'");
    s_refuse_any ("{\"a\":1 \"b\":2}", "'}' expected near '\"b\"'");
    s_refuse_any ("{\"a\":}", "unexpected token near '}'");
    s_refuse_any ("{} {}", "end of file expected near '{'");
    s_refuse_any ("[] x", "end of file expected near 'x'");
    s_refuse_any ("tru", "invalid token near 'tru'");
    s_refuse_any ("[nullx]", "invalid token near 'nullx'");
    s_refuse_any ("NaN", "invalid token near 'NaN'");
    s_refuse_any ("[Infinity]", "invalid token near 'Infinity'");
    s_refuse_any ("[@]", "invalid token near '@'");
    s_refuse_any ("[\xc3\xa9]", "invalid token near '\xc3\xa9'");
    //  Numbers outside RFC 8259.
    s_refuse_any ("01", "invalid token near '0'");
    s_refuse_any ("-01", "invalid token near '-0'");
    s_refuse_any ("+1", "invalid token near '+'");
    s_refuse_any (".5", "invalid token near '.'");
    s_refuse_any ("5.", "invalid token near '5.'");
    s_refuse_any ("[5.e3]", "invalid token near '5.'");
    s_refuse_any ("1e", "invalid token near '1e'");
    s_refuse_any ("1e+", "invalid token near '1e+'");
    s_refuse_any ("-", "invalid token near '-'");
    s_refuse_any ("[-a]", "invalid token near '-'");
    s_refuse_any ("0x10", "end of file expected near 'x'");
    s_refuse_any ("9223372036854775808", "too big integer near '9223372036854775808'");
    s_refuse_any ("-9223372036854775809", "too big negative integer near '-9223372036854775809'");
    s_refuse_any ("123456789012345678901234567890", "too big integer");
    s_refuse_any ("[1e309]", "real number overflow near '1e309'");
    s_refuse_any ("-1.8e308", "real number overflow near '-1.8e308'");
    //  Strings.
    s_refuse_any ("\"abc", "premature end of input near '\"abc'");
    s_refuse_any ("[\"a\nb\"]", "unexpected newline near '\"a'");
    s_refuse_any ("[\"a\tb\"]", "control character 0x9 near '\"a'");
    s_refuse ("[\"a\0b\"]", 7, JSON_DECODE_ANY, "control character 0x0 near '\"a'");
    s_refuse_any ("\"\\x\"", "invalid escape near '\"\\x'");
    s_refuse_any ("\"\\u12\"", "invalid escape near '\"\\u12\"'");
    s_refuse_any ("\"\\u12", "invalid escape near '\"\\u12'");
    s_refuse_any ("\"\\", "invalid escape near '\"\\'");
    s_refuse_any ("[\"\\u0000\"]", "\\u0000 is not allowed without JSON_ALLOW_NUL near '\"\\u0000\"'");
    s_refuse_any ("{\"a\\u0000\":1}", "NUL byte in object key not supported near '\"a\\u0000\"'");
    s_refuse_any ("\"\\ud800\"", "invalid Unicode '\\uD800' near '\"\\ud800\"'");
    s_refuse_any ("\"\\udc00\"", "invalid Unicode '\\uDC00' near '\"\\udc00\"'");
    s_refuse_any ("\"\\ud83d\\u0041\"", "invalid Unicode '\\uD83D\\u0041' near '\"\\ud83d\\u0041\"'");
    s_refuse_any ("\"\\ud83d\\ud83d\"", "invalid Unicode '\\uD83D\\uD83D' near '\"\\ud83d\\ud83d\"'");
    s_refuse_any ("\"\\ud83d\\n\"", "invalid Unicode '\\uD83D' near '\"\\ud83d\\n\"'");
    //  The whole string is read before its escapes are decoded.
    s_refuse_any ("\"\\ud800 \\q\"", "invalid escape near '\"\\ud800 \\q'");
    s_refuse_any ("\"\\ud800\\u12x\"", "invalid escape near '\"\\ud800\\u12x'");
    //  Invalid UTF-8: overlongs, surrogates, past U+10FFFF, cut short, stray.
    s_refuse_any ("[\"ab\xff\"]", "unable to decode byte 0xff near '\"ab'");
    s_refuse_any ("\"\xc0\xaf\"", "unable to decode byte 0xc0 near '\"'");
    s_refuse_any ("\"\xe0\x80\xaf\"", "unable to decode byte 0xe0 near '\"'");
    s_refuse_any ("\"\xed\xa0\x80\"", "unable to decode byte 0xed near '\"'");
    s_refuse_any ("\"\xf4\x90\x80\x80\"", "unable to decode byte 0xf4 near '\"'");
    s_refuse_any ("\"\xc3\"", "unable to decode byte 0xc3 near '\"'");
    s_refuse_any ("\"\x80\"", "unable to decode byte 0x80 near '\"'");
    s_refuse_any ("[\xff]", "unable to decode byte 0xff");
    s_refuse_any ("[1\xff]", "unable to decode byte 0xff near '1'");
    s_refuse_any ("[tru\xe9]", "unable to decode byte 0xe9 near 'tru'");
    //  Long tokens are not quoted.
    s_refuse_any ("[\"0123456789012345678901234567890\n\"]", "unexpected newline");
    //  NUL bytes outside strings.
    s_refuse ("[\0]", 3, JSON_DECODE_ANY, "invalid token near end of file");
    s_refuse ("{}\0", 3, JSON_DECODE_ANY, "end of file expected near end of file");
    s_refuse ("\0{}", 3, 0, "'[' or '{' expected near end of file");
    //  The one difference: jansson skips a NUL right after a number or a
    //  word and accepts these; sb_json_parse refuses every NUL.
    json_error_t error;
    assert_null (sb_json_parse ("[1\0]", 4, 0, &error));
    assert_string_equal (error.text, "']' expected near end of file");
    assert_int_equal (error.position, 3);
    assert_null (sb_json_parse ("[true\0]", 7, 0, NULL));
    assert_null (sb_json_parse ("-2.5e3\0", 7, JSON_DECODE_ANY, NULL));
    json_t *theirs = json_loadb ("[1\0]", 4, 0, NULL);
    assert_non_null (theirs);
    json_decref (theirs);
}

//  Where an error is reported: line from 1, column in characters, byte offset.
static void
test_error_position (void **state)
{
    json_error_t error;
    const char *text = "{\n  \"caf\xc3\xa9\": [1, 2,\n    @]\n}";
    assert_null (s_both (text, strlen (text), 0, &error));
    assert_string_equal (error.text, "invalid token near '@'");
    assert_int_equal (error.line, 3);
    assert_int_equal (error.column, 5);
    assert_int_equal (error.position, 25);
    assert_int_equal (json_error_code (&error), json_error_invalid_syntax);

    text = "[\"\xc3\xa9\xc3\xa9\" x]";
    assert_null (s_both (text, strlen (text), 0, &error));
    assert_int_equal (error.line, 1);
    assert_string_equal (error.text, "']' expected near 'x'");
    assert_int_equal (error.column, 7);          // each é counts once
    assert_int_equal (error.position, 9);

    text = "[\n\"a\nb\"]";
    assert_null (s_both (text, strlen (text), 0, &error));
    assert_string_equal (error.text, "unexpected newline near '\"a'");
    assert_int_equal (error.line, 2);
    assert_int_equal (error.column, 2);
    assert_int_equal (error.position, 4);

    text = "[1e999]";
    assert_null (s_both (text, strlen (text), 0, &error));
    assert_int_equal (json_error_code (&error), json_error_numeric_overflow);
    assert_int_equal (error.position, 6);
    text = "[\"a\xff\"]";
    assert_null (s_both (text, strlen (text), 0, &error));
    assert_int_equal (json_error_code (&error), json_error_invalid_utf8);
    assert_int_equal (error.position, 3);        // the bad byte itself
    text = "{\"a\":1,\"a\":2}";
    assert_null (s_both (text, strlen (text), JSON_REJECT_DUPLICATES, &error));
    assert_string_equal (error.text, "duplicate object key near '\"a\"'");
    assert_int_equal (json_error_code (&error), json_error_duplicate_key);
    assert_int_equal (error.position, 10);
}

static void
test_numbers (void **state)
{
    struct { const char *text; json_int_t value; } integers [] = {
        { "9223372036854775807", INT64_MAX }, { "-9223372036854775808", INT64_MIN },
        { "0", 0 }, { "-0", 0 }, { "1000000000000000000", 1000000000000000000LL },
        { "-12", -12 },
    };
    for (size_t i = 0; i < sizeof integers / sizeof integers [0]; i++) {
        json_t *tree = s_both (integers [i].text, strlen (integers [i].text), JSON_DECODE_ANY, NULL);
        assert_true (json_is_integer (tree));
        assert_true (json_integer_value (tree) == integers [i].value);
        json_decref (tree);
    }
    struct { const char *text; double value; } reals [] = {
        { "1e308", 1e308 }, { "1e-400", 0.0 }, { "-0.0", -0.0 }, { "0.1", 0.1 }, { "1E+2", 100.0 },
        { "2.2250738585072014e-308", 2.2250738585072014e-308 }, { "4.9e-324", 4.9e-324 },
        { "1.7976931348623157e308", 1.7976931348623157e308 }, { "9007199254740993", 0 },
        { "9007199254740993.0", 9007199254740992.0 }, { "0.30000000000000004", 0.30000000000000004 },
        { "123456789012345678901234567890.5", 1.2345678901234568e29 }, { "1e22", 1e22 },
        { "1e23", 1e23 }, { "-5e-324", -4.9e-324 }, { "0e999999999999", 0.0 },
        { "1.00000000000000000000000000000000000000000000000000001", 1.0 },
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals [0]; i++) {
        json_t *tree = s_both (reals [i].text, strlen (reals [i].text), JSON_DECODE_ANY, NULL);
        assert_non_null (tree);
        if (json_is_real (tree)) {
            double value = json_real_value (tree);
            if (memcmp (&value, &reals [i].value, sizeof value) != 0)
                fail_msg ("%s read as %.17g", reals [i].text, value);
        }
        else
            assert_true (json_is_integer (tree));   // 9007199254740993 has no '.': an integer
        json_decref (tree);
    }
    assert_true (signbit (-0.0));
    json_t *tree = sb_json_parse ("[-0.0,-0]", 9, 0, NULL);
    assert_true (signbit (json_real_value (json_array_get (tree, 0))));
    assert_true (json_is_integer (json_array_get (tree, 1)));
    json_decref (tree);
    //  Reals past the fast path's 19 digits and exponents past 10^22.
    const char *slow [] = { "[3.14159265358979323846264338327950288]", "[1e-22, 1e-23, 123e-30, 5e300]",
                            "[0.000000000000000000000000000001]", "[1e309, 1]", "[-1e-400]", NULL };
    for (int i = 0; slow [i]; i++)
        s_agree (slow [i]);
}

static void
test_strings (void **state)
{
    const char *text = "[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\u20AC \\ud83d\\ude00 \\uDBFF\\uDFFF \\u0001 \\u007f\"]";
    json_t *tree = s_both (text, strlen (text), 0, NULL);
    assert_non_null (tree);
    const char *expected = "\" \\ / \b \f \n \r \t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \x01 \x7f";
    assert_int_equal (json_string_length (json_array_get (tree, 0)), strlen (expected));
    assert_string_equal (json_string_value (json_array_get (tree, 0)), expected);
    json_decref (tree);

    //  Keys and values both escaped, so each needs its own scratch; long
    //  ones to move the scratch to the heap.
    char long_text [4096];
    char run [600];
    memset (run, 'x', sizeof run - 1);
    run [sizeof run - 1] = '\0';
    snprintf (long_text, sizeof long_text,
              "{\"k\\t%s\":\"v\\n%s\",\"a\\u00e9\":[\"b\\\"%s\",{\"c\\/\":\"d\\\\\"}],\"e\\r\":\"%s\\u20ac\"}",
              run, run, run, run);
    assert_true (s_agree (long_text));
    //  One escaped string bigger than the scratch takes at once.
    size_t big_len = 200000;
    char *big = malloc (big_len + 8);
    assert_non_null (big);
    big [0] = '[';
    big [1] = '"';
    for (size_t i = 2; i < big_len; i += 2)
        memcpy (big + i, i % 6 == 0? "\\n": "ab", 2);
    memcpy (big + big_len, "\"]", 3);
    json_decref (s_both (big, big_len + 2, 0, NULL));
    free (big);
}

static void
test_objects (void **state)
{
    //  Key order is insertion order; a later duplicate keeps the first
    //  one's place, also when the values are containers.
    const char *text = "{\"z\":1,\"a\":{\"y\":[1],\"y\":{}},\"m\":[],\"a\":[2,{\"q\":1}],\"z\":\"last\"}";
    json_t *tree = s_both (text, strlen (text), 0, NULL);
    char *dump = json_dumps (tree, DUMP_FLAGS);
    assert_string_equal (dump, "{\"z\":\"last\",\"a\":[2,{\"q\":1}],\"m\":[]}");
    free (dump);
    json_decref (tree);
    s_refuse (text, strlen (text), JSON_REJECT_DUPLICATES, "duplicate object key near '\"y\"'");
    //  Escaped and raw spellings of one key are the same key.
    text = "{\"\\u0061\":1,\"a\":2}";
    s_refuse (text, strlen (text), JSON_REJECT_DUPLICATES, "duplicate object key near '\"a\"'");
    //  The same key in different objects is no duplicate.
    assert_true (s_agree ("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}"));
    //  Many keys (jansson rehashes its table as it grows).
    char many [8192];
    size_t used = 0;
    many [used++] = '{';
    for (int i = 0; i < 300; i++)
        used += (size_t) snprintf (many + used, sizeof many - used, "%s\"k%d\":%d", i? ",": "", (i * 7919) % 300, i);
    many [used++] = '}';
    many [used] = '\0';
    assert_true (s_agree (many));
}

static void
test_flags_and_arguments (void **state)
{
    json_error_t error;
    const size_t refused [] = { JSON_DISABLE_EOF_CHECK, JSON_DECODE_INT_AS_REAL, JSON_ALLOW_NUL,
                                JSON_DECODE_ANY | JSON_ALLOW_NUL, 0x10000 };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        assert_null (sb_json_parse ("[1]", 3, refused [i], &error));
        assert_non_null (strstr (error.text, "not supported"));
        assert_int_equal (json_error_code (&error), json_error_invalid_argument);
    }
    assert_null (sb_json_parse (NULL, 0, 0, &error));
    assert_string_equal (error.text, "wrong arguments");
    assert_null (sb_json_parse ("[", 1, 0, NULL));
    json_t *tree = sb_json_parse ("[1]", 3, 0, NULL);
    assert_non_null (tree);
    json_decref (tree);
    //  On success the error is reset, as jansson's, with the bytes read.
    assert_null (sb_json_parse ("x", 1, 0, &error));
    tree = sb_json_parse (" [1] \n", 6, 0, &error);
    assert_non_null (tree);
    assert_string_equal (error.text, "");
    assert_string_equal (error.source, "<buffer>");
    assert_int_equal (error.line, -1);
    assert_int_equal (error.column, -1);
    assert_int_equal (error.position, 6);
    json_decref (tree);
    //  No NUL needed after the text; bytes past len are not read.
    tree = sb_json_parse ("[1]]]]", 3, 0, NULL);
    assert_non_null (tree);
    json_decref (tree);
}

//  jansson refuses a value nested deeper than JSON_PARSER_MAX_DEPTH: the
//  top value is at depth 1, so 2048 nested arrays pass, but not a scalar
//  inside them, and not 2049.
static void
test_depth_limit (void **state)
{
    size_t max = 6 * (SB_JSON_MAX_DEPTH + 1) + 16;
    char *text = malloc (max);
    assert_non_null (text);
    json_error_t error;
    for (int depth = SB_JSON_MAX_DEPTH - 1; depth <= SB_JSON_MAX_DEPTH + 1; depth++) {
        for (int scalar = 0; scalar <= 1; scalar++) {
            memset (text, '[', depth);
            size_t len = (size_t) depth;
            if (scalar)
                text [len++] = '7';
            memset (text + len, ']', depth);
            len += (size_t) depth;
            json_t *tree = s_both (text, len, 0, &error);
            int fits = scalar? depth + 1 <= SB_JSON_MAX_DEPTH: depth <= SB_JSON_MAX_DEPTH;
            assert_int_equal (tree != NULL, fits);
            if (!fits) {
                assert_string_equal (error.text, scalar && depth == SB_JSON_MAX_DEPTH
                                                 ? "maximum parsing depth reached near '7'"
                                                 : "maximum parsing depth reached near '['");
                assert_int_equal (json_error_code (&error), json_error_stack_overflow);
            }
            json_decref (tree);
        }
    }
    //  Objects count the same way: {"a":{"a":...{}...}} with `depth`
    //  objects, then with a scalar innermost.
    for (int depth = SB_JSON_MAX_DEPTH; depth <= SB_JSON_MAX_DEPTH + 1; depth++) {
        for (int scalar = 0; scalar <= 1; scalar++) {
            size_t len = 0;
            for (int i = 0; i < depth - 1; i++, len += 5)
                memcpy (text + len, "{\"a\":", 5);
            if (scalar) {
                memcpy (text + len, "{\"a\":1}", 7);
                len += 7;
            }
            else {
                memcpy (text + len, "{}", 2);
                len += 2;
            }
            memset (text + len, '}', depth - 1);
            len += (size_t) depth - 1;
            json_t *tree = s_both (text, len, 0, &error);
            assert_int_equal (tree != NULL, depth == SB_JSON_MAX_DEPTH && !scalar);
            json_decref (tree);
        }
    }
    free (text);
    //  Far deeper: refused, without recursion.
    size_t deep = 100000;
    text = malloc (deep);
    assert_non_null (text);
    memset (text, '[', deep);
    assert_null (sb_json_parse (text, deep, 0, &error));
    assert_string_equal (error.text, "maximum parsing depth reached near '['");
    free (text);
}

//  jansson's allocator made to fail at the n-th call, for each n: every
//  failure is an error, never a crash or a leak.
static size_t s_allocations, s_fail_at, s_live;

static void *
s_failing_malloc (size_t size)
{
    if (s_allocations++ == s_fail_at)
        return NULL;
    void *block = malloc (size);
    if (block)
        s_live++;
    return block;
}

static void
s_counting_free (void *block)
{
    if (block)
        s_live--;
    free (block);
}

static void
test_memory_failure (void **state)
{
    const char *text = "{\"a\":[1,2.5,\"x\\ny\",{\"b\":null,\"c\":[true,false]}],\"d\\t\":\"e\","
                       "\"f\":{\"g\":{\"h\":[[],{}]}},\"i\":\"long string value\"}";
    json_set_alloc_funcs (s_failing_malloc, s_counting_free);
    size_t failures = 0;
    for (s_fail_at = 0; ; s_fail_at++) {
        s_allocations = 0;
        s_live = 0;
        json_error_t error;
        json_t *tree = sb_json_parse (text, strlen (text), 0, &error);
        if (tree) {
            json_decref (tree);
            assert_int_equal (s_live, 0);
            break;
        }
        assert_string_equal (error.text, "out of memory");
        assert_int_equal (json_error_code (&error), json_error_out_of_memory);
        assert_int_equal (s_live, 0);
        failures++;
    }
    json_set_alloc_funcs (malloc, free);
    assert_true (failures > 20);
}

//  Texts like the call path's: an API answer and a tool result.
static const char s_api_answer [] =
    "{\"items\":[{\"id\":\"acc_0001\",\"name\":\"Acme Corp\",\"industry\":\"Financial Services\","
    "\"website\":\"https://www.acmecorp.example\",\"phone\":\"+1-555-4423\",\"city\":\"London\","
    "\"country\":\"United Kingdom\",\"employees\":3952,\"annual_revenue\":535021760,"
    "\"owner\":\"Monica Reyes\",\"created_at\":\"2025-05-25\"},{\"id\":\"acc_0031\","
    "\"name\":\"Acme Partners\",\"industry\":\"Retail\",\"website\":\"https://www.acmepartners.example\","
    "\"phone\":\"+1-555-4764\",\"city\":\"Paris\",\"country\":\"France\",\"employees\":1330,"
    "\"annual_revenue\":76634600,\"owner\":\"Dana Scully\",\"created_at\":\"2025-02-02\"},"
    "{\"id\":\"acc_0271\",\"name\":\"Acme Logistics\",\"industry\":\"Energy\","
    "\"website\":\"https://www.acmelogistics.example\",\"phone\":\"+1-555-9575\",\"city\":\"Paris\","
    "\"country\":\"France\",\"employees\":2530,\"annual_revenue\":152475510,"
    "\"owner\":\"Walter Skinner\",\"created_at\":\"2025-03-11\"}],\"total\":10,\"limit\":20}";

static const char s_tool_result [] =
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":"
    "\"Found 2 accounts: Acme Corp (Financial Services, London); Acme Partners (Retail, Paris).\"},"
    "{\"type\":\"text\",\"text\":\"{\\\"items\\\":[{\\\"id\\\":\\\"acc_0001\\\",\\\"name\\\":"
    "\\\"Acme Corp\\\",\\\"employees\\\":3952,\\\"annual_revenue\\\":535021760},{\\\"id\\\":"
    "\\\"acc_0031\\\",\\\"name\\\":\\\"Acme Partners\\\"}],\\\"count\\\":2}\"}],"
    "\"structuredContent\":{\"items\":[{\"id\":\"acc_0001\",\"name\":\"Acme Corp\",\"score\":0.75,"
    "\"ratio\":-1.5e-3,\"ok\":true,\"note\":null}],\"count\":2},\"isError\":false}}";

//  Mutates valid seeds (byte flips, insertions, deletions, truncations,
//  spliced fragments); the two parsers must agree on every text, with
//  every flag set.
static void
test_agrees_with_jansson (void **state)
{
    const char *seeds [] = {
        s_api_answer, s_tool_result,
        "[\"\\u00e9\\ud83d\\ude00\",\"caf\xc3\xa9\",[],{},0,-0.5,1E9,false,123456789012345678,0.1]",
        "{\"a\":{\"b\":{\"c\":[1,[2,[3]]]}},\"s\":\"\\\"q\\\\\",\"a\":7,\"k\\u0041\":\"v\\n\"}",
        "[9223372036854775807,-9223372036854775808,1e308,1e-400,-0,-0.0,1E+2,2.5e-3]",
        "  \"str\\ud800\\udc00 \\u20ac \xf0\x9f\x98\x80\"  ",
    };
    const size_t seed_count = sizeof seeds / sizeof seeds [0];
    static const char alphabet [] =
        "{}[]\",:\\u0123456789.eE+-tfnalsrxD \t\n\r\xc3\xa9\xed\xf0\x80\xbf\xff\x01";
    static const char *fragments [] = { "\\ud800", "\\udc00", "\\u0000", "1e309", "[[[", "\"\\\"\"",
                                        "99999999999999999999", "{\"a\":1}", "\xe2\x82\xac" };
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int compared = 0, accepted = 0;
    char text [sizeof s_api_answer + sizeof s_tool_result + 64];    // room for any seed and its insertions
    for (int round = 0; round < 4000; round++) {
        const char *seed = seeds [round % seed_count];
        size_t len = strlen (seed);
        memcpy (text, seed, len);
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        int edits = 1 + (int) (rng % 3);
        for (int e = 0; e < edits; e++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t at = len? (size_t) (rng >> 8) % len: 0;
            char c = (rng >> 40) % 40 == 0? '\0': alphabet [(rng >> 32) % (sizeof alphabet - 1)];
            switch (rng % 6) {
                case 0:
                case 1:
                    if (len)
                        text [at] = c;                                      // replace
                    break;
                case 2:
                    if (len > 1) {
                        memmove (text + at, text + at + 1, len - at - 1);   // delete
                        len--;
                    }
                    break;
                case 3:
                    if (len + 1 < sizeof text) {
                        memmove (text + at + 1, text + at, len - at);       // insert
                        text [at] = c;
                        len++;
                    }
                    break;
                case 4:
                    if (round % 4 == 0)
                        len = at;                                           // truncate
                    break;
                default: {
                    const char *fragment = fragments [(rng >> 20) % (sizeof fragments / sizeof fragments [0])];
                    size_t fragment_len = strlen (fragment);
                    if (len + fragment_len < sizeof text) {
                        memmove (text + at + fragment_len, text + at, len - at);
                        memcpy (text + at, fragment, fragment_len);
                        len += fragment_len;
                    }
                }
            }
        }
        json_decref (s_both (text, len, 0, NULL));
        json_decref (s_both (text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL));
        json_t *tree = s_both (text, len, JSON_DECODE_ANY, NULL);
        accepted += tree != NULL;
        json_decref (tree);
        compared++;
    }
    assert_int_equal (compared, 4000);
    assert_true (accepted > 300 && accepted < compared - 1000);    // both sides exercised
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_accepts),
        cmocka_unit_test (test_refusals),
        cmocka_unit_test (test_error_position),
        cmocka_unit_test (test_numbers),
        cmocka_unit_test (test_strings),
        cmocka_unit_test (test_objects),
        cmocka_unit_test (test_flags_and_arguments),
        cmocka_unit_test (test_depth_limit),
        cmocka_unit_test (test_memory_failure),
        cmocka_unit_test (test_agrees_with_jansson),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
