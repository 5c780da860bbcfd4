/*  tests/13_scope_unit.c — unit tests of gateway/sb_scope: the scopes a
    /mcp request needs, whether a token's scope claim grants them (whole
    tokens, any order, extra scopes fine, the old "mcp" scope not enough),
    and the RFC 6750 §3.1 insufficient_scope challenge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sb_scope.h"

#define META "https://mcp.example.com/.well-known/oauth-protected-resource"

static void
test_needed (void **state)
{
    (void) state;
    assert_string_equal (sb_scope_needed (false), "mcp:tools");
    assert_string_equal (sb_scope_needed (true), "mcp:tools mcp:write");
    //  Both are scopes the authorization server issues.
    assert_true (sb_oauth_scope_subset (sb_scope_needed (true), SB_OAUTH_SCOPES_SUPPORTED));
    assert_true (sb_scope_granted (SB_OAUTH_SCOPE_TOOLS, sb_scope_needed (false)));
    assert_true (sb_scope_granted (SB_OAUTH_SCOPE_DEFAULT, sb_scope_needed (true)));
}

static void
test_granted (void **state)
{
    (void) state;
    const char *read = sb_scope_needed (false), *write = sb_scope_needed (true);
    assert_true (sb_scope_granted ("mcp:tools", read));
    assert_false (sb_scope_granted ("mcp:tools", write));
    assert_true (sb_scope_granted ("mcp:tools mcp:write", write));
    assert_true (sb_scope_granted ("mcp:write mcp:tools", write));
    assert_true (sb_scope_granted ("openid mcp:write profile mcp:tools", write));
    //  mcp:write alone is no use of /mcp.
    assert_false (sb_scope_granted ("mcp:write", read));
    assert_false (sb_scope_granted ("mcp:write", write));
    //  Whole tokens only; the scope sb-token minted before scopes existed.
    assert_false (sb_scope_granted ("mcp", read));
    assert_false (sb_scope_granted ("mcp tools", read));
    assert_false (sb_scope_granted ("mcp:toolsx", read));
    assert_false (sb_scope_granted ("xmcp:tools", read));
    assert_false (sb_scope_granted ("mcp:tools:write", write));
    assert_false (sb_scope_granted ("MCP:TOOLS", read));
    //  No scope claim, or none given.
    assert_false (sb_scope_granted ("", read));
    assert_false (sb_scope_granted (NULL, read));
    assert_false (sb_scope_granted ("mcp:tools", NULL));
    //  Spaces around and between do not matter.
    assert_true (sb_scope_granted (" mcp:tools  mcp:write ", write));
}

static void
test_challenge (void **state)
{
    (void) state;
    char out [SB_MAX_SCOPE_CHALLENGE];
    assert_int_equal (sb_scope_challenge (out, sizeof out, "mcp:tools mcp:write", META,
                                          "More scope needed."), 0);
    assert_string_equal (out, "Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:write\", "
                              "resource_metadata=\"" META "\", error_description=\"More scope needed.\"");
    //  A quote, a backslash or a control character would break the quoted-string.
    assert_int_equal (sb_scope_challenge (out, sizeof out, "mcp:tools", META, "say \"hi\""), -1);
    assert_string_equal (out, "");
    assert_int_equal (sb_scope_challenge (out, sizeof out, "mcp:tools", "https://a\\b", "x"), -1);
    assert_int_equal (sb_scope_challenge (out, sizeof out, "mcp:tools\r\nX: y", META, "x"), -1);
    assert_int_equal (sb_scope_challenge (out, sizeof out, NULL, META, "x"), -1);
    //  Too small a buffer: nothing half-written.
    char small [40];
    assert_int_equal (sb_scope_challenge (small, sizeof small, "mcp:tools", META, "x"), -1);
    assert_string_equal (small, "");
    assert_int_equal (sb_scope_challenge (small, 0, "mcp:tools", META, "x"), -1);
    //  The longest public URL still fits.
    char url [600];
    memset (url, 'a', sizeof url - 1);
    url [sizeof url - 1] = 0;
    assert_int_equal (sb_scope_challenge (out, sizeof out, sb_scope_needed (true), url,
                                          "The access token does not grant the scope this "
                                          "request needs."), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_needed),
        cmocka_unit_test (test_granted),
        cmocka_unit_test (test_challenge),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
