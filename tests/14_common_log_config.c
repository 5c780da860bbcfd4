/*  tests/14_common_log_config.c — unit tests of logging (redaction) and
    configuration (precedence file < environment < command line, bounds). */
#include "sb_config.h"
#include "sb_attr.h"
#include "sb_log.h"
#include "sb_clock.h"
#include "sb_sched.h"

#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static void
test_redaction (void **state)
{
    char out [256];
    sb_log_redact ("Authorization: Bearer eyJhbGciOi.abc.def sent", out, sizeof out);
    assert_null (strstr (out, "eyJhbGciOi"));
    assert_non_null (strstr (out, "[redacted]"));
    assert_non_null (strstr (out, "sent"));

    sb_log_redact ("client_secret=s3cr3t&x=1", out, sizeof out);
    assert_null (strstr (out, "s3cr3t"));
    assert_non_null (strstr (out, "x=1"));

    sb_log_redact ("{\"password\":\"hunter2\"}", out, sizeof out);
    assert_null (strstr (out, "hunter2"));

    sb_log_redact ("service=api credit=64", out, sizeof out);
    assert_string_equal (out, "service=api credit=64");

    //  The word alone is not a secret: only a value assigned to it is.
    sb_log_redact ("role=token credit=4", out, sizeof out);
    assert_string_equal (out, "role=token credit=4");
    sb_log_redact ("token refresh scheduled", out, sizeof out);
    assert_string_equal (out, "token refresh scheduled");
    sb_log_redact ("token=abc123 next", out, sizeof out);
    assert_null (strstr (out, "abc123"));

    //  Output is bounded and terminated.
    char small [8];
    sb_log_redact ("a very long message indeed", small, sizeof small);
    assert_int_equal (strlen (small), sizeof small - 1);
}

static void
test_level_parse (void **state)
{
    sb_log_level_t level;
    assert_int_equal (sb_log_level_parse ("WARN", &level), 0);
    assert_int_equal (level, SB_LOG_WARN);
    assert_int_equal (sb_log_level_parse ("loud", &level), -1);
}

static const sb_option_t s_options [] = {
    { "listen", SB_OPT_STR, "127.0.0.1:8080", 0, 0, "SB_TEST_LISTEN", "where to listen" },
    { "credit", SB_OPT_INT, "64", 1, 1000, "SB_TEST_CREDIT", "jobs at once" },
    { "verbose", SB_OPT_BOOL, "false", 0, 0, NULL, "more logs" },
    { .name = NULL }
};

static int
s_load (sb_config_t *config, int argc, const char **argv)
{
    return sb_config_load (config, argc, sb_unconst (argv));
}

static void
test_config_precedence (void **state)
{
    char path [] = "/tmp/sb-config-test-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    const char *text = "# comment\nlisten = 0.0.0.0:9000\ncredit = 5\n";
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);

    sb_config_t *config = sb_config_new ("test", s_options);
    const char *argv1 [] = { "test", "--config", path };
    assert_int_equal (s_load (config, 3, argv1), 0);
    assert_string_equal (sb_config_str (config, "listen"), "0.0.0.0:9000");
    assert_int_equal (sb_config_int (config, "credit"), 5);
    assert_false (sb_config_bool (config, "verbose"));

    setenv ("SB_TEST_CREDIT", "7", 1);
    const char *argv2 [] = { "test", "--config", path, "--verbose" };
    assert_int_equal (s_load (config, 4, argv2), 0);
    assert_int_equal (sb_config_int (config, "credit"), 7);     //  env beats file
    assert_true (sb_config_bool (config, "verbose"));

    const char *argv3 [] = { "test", "--config", path, "--credit=9" };
    assert_int_equal (s_load (config, 4, argv3), 0);
    assert_int_equal (sb_config_int (config, "credit"), 9);     //  command line beats env
    unsetenv ("SB_TEST_CREDIT");
    sb_config_destroy (&config);
    assert_null (config);
    sb_config_destroy (&config);                                //  idempotent
    unlink (path);
}

static void
test_config_errors (void **state)
{
    sb_config_t *config = sb_config_new ("test", s_options);
    const char *bounds [] = { "test", "--credit", "0" };
    assert_int_equal (s_load (config, 3, bounds), -1);
    const char *not_number [] = { "test", "--credit", "12abc" };
    assert_int_equal (s_load (config, 3, not_number), -1);
    const char *unknown [] = { "test", "--colour", "blue" };
    assert_int_equal (s_load (config, 3, unknown), -1);
    const char *missing [] = { "test", "--listen" };
    assert_int_equal (s_load (config, 2, missing), -1);
    const char *bad_bool [] = { "test", "--verbose=maybe" };
    assert_int_equal (s_load (config, 2, bad_bool), -1);
    const char *no_file [] = { "test", "--config", "/nonexistent/sb.conf" };
    assert_int_equal (s_load (config, 3, no_file), -1);
    setenv ("SB_TEST_CREDIT", "5000", 1);
    const char *plain [] = { "test" };
    assert_int_equal (s_load (config, 1, plain), -1);           //  env out of bounds
    unsetenv ("SB_TEST_CREDIT");
    sb_config_destroy (&config);
}

static void
test_clock (void **state)
{
    int64_t now = sb_clock_mono_ms ();
    assert_true (sb_clock_left_ms (now - 10) == 0);
    assert_true (sb_clock_left_ms (now + 100000) > 90000);
    assert_true (sb_clock_wall_ms () > 1700000000000LL);
}

//  --cpu-policy: batch and normal are applied (to this thread), anything
//  else refused.
static void
test_cpu_policy (void **state)
{
    assert_int_equal (sb_sched_apply ("batch"), 0);
    assert_int_equal (sched_getscheduler (0), SCHED_BATCH);
    assert_int_equal (sb_sched_apply ("normal"), 0);
    assert_int_equal (sched_getscheduler (0), SCHED_OTHER);
    assert_int_equal (sb_sched_apply ("turbo"), -1);
    assert_int_equal (sb_sched_apply (""), -1);
    assert_int_equal (sched_getscheduler (0), SCHED_OTHER);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_redaction),
        cmocka_unit_test (test_level_parse),
        cmocka_unit_test (test_config_precedence),
        cmocka_unit_test (test_config_errors),
        cmocka_unit_test (test_clock),
        cmocka_unit_test (test_cpu_policy),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
