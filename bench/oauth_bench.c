/*  bench/oauth_bench.c — sb-oauth-bench: what OAuth costs switchboard,
    without a farm (issue 20's benchmark; bench/oauth runs it and the farm
    rows). Three commands:

    jwt       JWT verifications per second on this thread, HS256 against
              EdDSA (Ed25519), with an OAuth access token's claims (iss the
              issuer URL, aud, ten, sub "user:42", cid, scope "mcp:tools
              mcp:write", iat, exp = iat + 900): sb_token_verify_keys with
              no cache, the gateway's cache (sb_token_cache_verify) missing
              on every call (more distinct tokens than it has slots), and
              the cache hitting (one token again and again). Each round runs
              at least S_ROUND_CPU_NS of this thread's CPU time; best and
              median round.
    password  Argon2id sign-ins per second (sb_password_verify with
              common/sb_password.h's parameters) on the worker's offload
              pool (workers/sb_offload.h) of 1 and of 2 threads, while a 5 ms
              timer on the same event loop measures how late the loop runs
              (the off-loop claim); the same timer with no hashing first,
              for contrast.
    tokens    prints N distinct tokens (sub user:1 … user:N), HS256 under a
              key file or EdDSA under a private key and kid, for the farm's
              cache-miss rows (bench/load --tokens-file).

    Not a test: it checks that each verification answers as expected, so a
    broken build cannot print a fast figure, and asserts nothing else.

    Usage: sb-oauth-bench jwt [-r rounds]
           sb-oauth-bench password [-k sign-ins per pool]
           sb-oauth-bench tokens -n N --audience URL --tenant T
                          (--key-file F | --private-key-file F --kid K) */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sb_clock.h"
#include "sb_crypto.h"
#include "sb_jwks.h"
#include "sb_offload.h"
#include "sb_password.h"
#include "sb_reactor.h"
#include "sb_token.h"

#define S_MAX_ROUNDS        21                  /* rounds one jwt row may run */
#define S_ROUND_CPU_NS      200000000LL         /* CPU time one round runs at least, ns */
#define S_MISS_TOKENS       8192                /* distinct tokens of a miss row (8 × cache slots) */
#define S_ACCESS_TTL_S      900                 /* exp - iat, as SB_OAUTH_ACCESS_TTL_S */
#define S_TIMER_MS          5                   /* the loop's timer period */
#define S_IDLE_MS           2000                /* the timer alone, before hashing */
#define S_MAX_SIGNINS       64                  /* sign-ins one pool may be given */
#define S_MAX_TICKS         100000              /* timer firings recorded per phase */
#define S_MAX_TOKENS_OUT    100000              /* tokens the tokens command prints */
#define S_KEY_FILE_MAX      4096                /* bytes of a hex key file */
#define S_ISSUER            "https://mcp.example.com"
#define S_AUDIENCE          S_ISSUER "/mcp"
#define S_KID               "bench-2026-12"
#define S_PASSWORD          "correct horse battery staple"

static int64_t
s_cpu_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int64_t
s_mono_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000LL + now.tv_nsec / 1000;
}

static int
s_by_value (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

static void
s_die (const char *what)
{
    fprintf (stderr, "sb-oauth-bench: %s\n", what);
    exit (1);
}


//  ---------------------------------------------------------------------
//  jwt

//  What one row verifies, and how.
typedef enum { S_PLAIN, S_CACHE } s_path_t;

typedef struct {
    const char *name;               /* the row's label */
    s_path_t path;                  /* sb_token_verify_keys or the cache */
    char **tokens;                  /* the tokens, verified in turn */
    size_t count;                   /* how many */
    sb_token_cache_t *cache;        /* S_CACHE: the cache verifying them */
} s_row_t;

//  The keys and key set every row verifies with.
typedef struct {
    uint8_t hs_key [32];            /* HS256 key */
    uint8_t seed [SB_ED25519_KEY_LEN];  /* Ed25519 private seed */
    sb_jwks_t *jwks;                /* its public key under S_KID */
} s_keys_t;

//  An OAuth access token's claims, subject `subject`, issuer `issuer`.
static sb_token_claims_t
s_claims (const char *issuer, const char *subject, int64_t now_s)
{
    sb_token_claims_t claims;
    memset (&claims, 0, sizeof claims);
    snprintf (claims.issuer, sizeof claims.issuer, "%s", issuer);
    snprintf (claims.tenant, sizeof claims.tenant, "%s", "acme-corp");
    snprintf (claims.subject, sizeof claims.subject, "%s", subject);
    snprintf (claims.client_id, sizeof claims.client_id, "%s", "c_4kQ9vJm2TxW7pLs0bNe8Rg");
    snprintf (claims.scope, sizeof claims.scope, "%s", "mcp:tools mcp:write");
    snprintf (claims.audience, sizeof claims.audience, "%s", S_AUDIENCE);
    claims.issued_at = now_s;
    claims.expires_at = now_s + S_ACCESS_TTL_S;
    return claims;
}

static char *
s_issue (const s_keys_t *keys, bool eddsa, const sb_token_claims_t *claims)
{
    char *token = eddsa? sb_token_issue_eddsa (claims, keys->seed, S_KID)
                       : sb_token_issue (claims, keys->hs_key, sizeof keys->hs_key);
    if (!token)
        s_die ("cannot issue a token");
    return token;
}

static sb_token_rc_t
s_verify (const s_row_t *row, const s_keys_t *keys, const char *token, int64_t now_s)
{
    sb_token_claims_t claims;
    if (row->path == S_CACHE)
        return sb_token_cache_verify (row->cache, token, now_s, &claims);
    return sb_token_verify_keys (token, keys->hs_key, sizeof keys->hs_key, keys->jwks,
                                 S_AUDIENCE, now_s, &claims);
}

//  Runs and prints one row: `rounds` rounds, each verifying the row's
//  tokens in turn until S_ROUND_CPU_NS of CPU time has passed.
static void
s_jwt_row (const s_row_t *row, const s_keys_t *keys, int rounds)
{
    int64_t now_s = sb_clock_wall_ms () / 1000;
    if (s_verify (row, keys, row->tokens [0], now_s) != SB_TOKEN_OK)
        s_die ("a token the row verifies is refused");
    uint64_t hits_before = 0, misses_before = 0;
    if (row->cache)
        sb_token_cache_counts (row->cache, &hits_before, &misses_before);
    double ns_per_op [S_MAX_ROUNDS];
    size_t next = 0;
    uint64_t total = 0;
    for (int round = 0; round < rounds; round++) {
        int64_t start = s_cpu_ns (), spent = 0;
        uint64_t ops = 0;
        while (spent < S_ROUND_CPU_NS) {
            for (int i = 0; i < 64; i++) {
                if (s_verify (row, keys, row->tokens [next], now_s) != SB_TOKEN_OK)
                    s_die ("a token was refused during the row");
                next = (next + 1) % row->count;
            }
            ops += 64;
            spent = s_cpu_ns () - start;
        }
        ns_per_op [round] = (double) spent / (double) ops;
        total += ops;
    }
    qsort (ns_per_op, (size_t) rounds, sizeof ns_per_op [0], s_by_value);
    double median = ns_per_op [rounds / 2];
    char hits [64] = "-";
    if (row->cache) {
        uint64_t h = 0, m = 0;
        sb_token_cache_counts (row->cache, &h, &m);
        snprintf (hits, sizeof hits, "%.1f%%",
                  100.0 * (double) (h - hits_before) / (double) (total ? total : 1));
    }
    printf ("%-34s %5zu %9.0f %9.0f %10.0f %8s\n", row->name, strlen (row->tokens [0]),
            ns_per_op [0], median, 1e9 / median, hits);
}

static int
s_jwt (int rounds)
{
    s_keys_t keys;
    if (sb_crypto_random (keys.hs_key, sizeof keys.hs_key)
    ||  sb_crypto_random (keys.seed, sizeof keys.seed))
        s_die ("no randomness");
    char *jwk = sb_jwks_public_jwk (keys.seed, S_KID);
    if (!jwk)
        s_die ("cannot make the public JWK");
    char text [2048], error [256];
    snprintf (text, sizeof text, "{\"keys\":[%s]}", jwk);
    free (jwk);
    keys.jwks = sb_jwks_parse (text, strlen (text), error, sizeof error);
    if (!keys.jwks)
        s_die (error);

    int64_t now_s = sb_clock_wall_ms () / 1000;
    //  sb_token_verify_keys accepts iss "switchboard" only (the issuer URL
    //  is accepted through the cache, sb_token_cache_set_issuer), so its
    //  rows carry that iss; the rest of the claims are the same.
    sb_token_claims_t plain = s_claims ("", "user:42", now_s);
    sb_token_claims_t oauth = s_claims (S_ISSUER, "user:42", now_s);
    char *hs_plain = s_issue (&keys, false, &plain), *ed_plain = s_issue (&keys, true, &plain);
    char *hs_one = s_issue (&keys, false, &oauth), *ed_one = s_issue (&keys, true, &oauth);
    char **hs_many = calloc (S_MISS_TOKENS, sizeof (char *));
    char **ed_many = calloc (S_MISS_TOKENS, sizeof (char *));
    if (!hs_many || !ed_many)
        s_die ("out of memory");
    for (size_t i = 0; i < S_MISS_TOKENS; i++) {
        char subject [32];
        snprintf (subject, sizeof subject, "user:%zu", 10000 + i);
        sb_token_claims_t claims = s_claims (S_ISSUER, subject, now_s);
        hs_many [i] = s_issue (&keys, false, &claims);
        ed_many [i] = s_issue (&keys, true, &claims);
    }
    sb_token_cache_t *caches [4];
    for (int i = 0; i < 4; i++) {
        caches [i] = sb_token_cache_new (keys.hs_key, sizeof keys.hs_key, S_AUDIENCE);
        if (!caches [i] || sb_token_cache_set_issuer (caches [i], S_ISSUER))
            s_die ("cannot make a token cache");
        sb_token_cache_set_jwks (caches [i], keys.jwks);
    }
    const s_row_t rows [] = {
        { "HS256, no cache", S_PLAIN, &hs_plain, 1, NULL },
        { "EdDSA, no cache", S_PLAIN, &ed_plain, 1, NULL },
        { "HS256, cache miss (8192 tokens)", S_CACHE, hs_many, S_MISS_TOKENS, caches [0] },
        { "EdDSA, cache miss (8192 tokens)", S_CACHE, ed_many, S_MISS_TOKENS, caches [1] },
        { "HS256, cache hit", S_CACHE, &hs_one, 1, caches [2] },
        { "EdDSA, cache hit", S_CACHE, &ed_one, 1, caches [3] },
    };
    printf ("JWT verification, one thread, %d rounds of >= %.1f s CPU each; ns per verification\n",
            rounds, (double) S_ROUND_CPU_NS / 1e9);
    printf ("%-34s %5s %9s %9s %10s %8s\n", "row", "bytes", "best ns", "median ns",
            "ops/s", "hits");
    for (size_t i = 0; i < sizeof rows / sizeof rows [0]; i++)
        s_jwt_row (&rows [i], &keys, rounds);

    for (int i = 0; i < 4; i++)
        sb_token_cache_destroy (&caches [i]);
    for (size_t i = 0; i < S_MISS_TOKENS; i++) {
        free (hs_many [i]);
        free (ed_many [i]);
    }
    free (hs_many);
    free (ed_many);
    free (hs_plain);
    free (ed_plain);
    free (hs_one);
    free (ed_one);
    sb_jwks_destroy (&keys.jwks);
    return 0;
}


//  ---------------------------------------------------------------------
//  password

//  The event loop and what its timer and the pool's jobs recorded.
typedef struct {
    sb_reactor_t *reactor;          /* the loop */
    int timer;                      /* its S_TIMER_MS timer */
    int64_t due_us;                 /* when the timer should fire next */
    int64_t late_us [S_MAX_TICKS];  /* how late each firing was, µs */
    int ticks;                      /* firings recorded */
    int done;                       /* sign-ins finished */
    const char *encoded;            /* the stored hash */
} s_loop_t;

//  One sign-in on a pool thread.
typedef struct {
    s_loop_t *loop;                 /* borrowed */
    sb_password_result_t result;    /* what verify found */
    int64_t cpu_ns;                 /* its thread's CPU time */
} s_signin_t;

static void
s_tick (sb_reactor_t *reactor, void *arg)
{
    s_loop_t *loop = (s_loop_t *) arg;
    int64_t now = s_mono_us ();
    if (loop->ticks < S_MAX_TICKS)
        loop->late_us [loop->ticks++] = now - loop->due_us;
    loop->due_us = now + S_TIMER_MS * 1000;
    sb_reactor_timer_set (reactor, loop->timer, sb_clock_mono_ms () + S_TIMER_MS);
}

static void
s_signin_work (void *arg)
{
    s_signin_t *signin = (s_signin_t *) arg;
    const char *error = NULL;
    int64_t start = s_cpu_ns ();
    signin->result = sb_password_verify (signin->loop->encoded, S_PASSWORD, &error);
    signin->cpu_ns = s_cpu_ns () - start;
}

static void
s_signin_done (void *arg, bool ran)
{
    s_signin_t *signin = (s_signin_t *) arg;
    if (!ran || signin->result != SB_PASSWORD_MATCH)
        s_die ("a sign-in did not match");
    signin->loop->done++;
}

//  Starts the timer afresh: the next phase's lateness only.
static void
s_timer_restart (s_loop_t *loop)
{
    loop->ticks = 0;
    loop->due_us = s_mono_us () + S_TIMER_MS * 1000;
    sb_reactor_timer_set (loop->reactor, loop->timer, sb_clock_mono_ms () + S_TIMER_MS);
}

//  Prints the timer's lateness since s_timer_restart: median, p99, worst.
static void
s_timer_report (s_loop_t *loop, const char *what)
{
    static double late [S_MAX_TICKS];
    int n = loop->ticks;
    if (n == 0) {
        printf ("  %-28s no timer firing recorded\n", what);
        return;
    }
    for (int i = 0; i < n; i++)
        late [i] = (double) loop->late_us [i] / 1000.0;
    qsort (late, (size_t) n, sizeof late [0], s_by_value);
    printf ("  %-28s %5d firings, late by: median %.2f ms, p99 %.2f ms, worst %.2f ms\n",
            what, n, late [n / 2], late [(n * 99) / 100], late [n - 1]);
}

static int
s_password (int signins)
{
    char encoded [SB_PASSWORD_ENCODED_MAX];
    const char *error = NULL;
    int64_t start = s_mono_us ();
    if (sb_password_hash (S_PASSWORD, encoded, sizeof encoded, &error))
        s_die (error ? error : "cannot hash");
    double hash_ms = (double) (s_mono_us () - start) / 1000.0;
    printf ("Argon2id: t=%d, m=%d KiB (%d MiB), p=%d, salt %d bytes, tag %d bytes\n",
            SB_PASSWORD_T_COST, SB_PASSWORD_M_KIB, SB_PASSWORD_M_KIB / 1024,
            SB_PASSWORD_PARALLELISM, SB_PASSWORD_SALT_LEN, SB_PASSWORD_HASH_LEN);
    printf ("  one hash on the main thread: %.0f ms wall\n", hash_ms);

    s_loop_t *loop = calloc (1, sizeof *loop);
    if (!loop)
        s_die ("out of memory");
    loop->encoded = encoded;
    loop->reactor = sb_reactor_new ();
    if (!loop->reactor)
        s_die ("cannot make a reactor");
    loop->timer = sb_reactor_timer_new (loop->reactor, s_tick, loop);
    if (loop->timer < 0)
        s_die ("cannot make a timer");

    printf ("a %d ms timer on the event loop:\n", S_TIMER_MS);
    s_timer_restart (loop);
    int64_t until = sb_clock_mono_ms () + S_IDLE_MS;
    while (sb_clock_mono_ms () < until)
        if (sb_reactor_run_once (loop->reactor, 100))
            s_die ("the reactor failed");
    s_timer_report (loop, "no hashing");

    static const int pools [] = { 1, 2 };
    s_signin_t jobs [S_MAX_SIGNINS];
    char line [2][160];
    for (size_t p = 0; p < sizeof pools / sizeof pools [0]; p++) {
        sb_offload_t *pool = sb_offload_new (loop->reactor, pools [p]);
        if (!pool)
            s_die ("cannot start the offload pool");
        loop->done = 0;
        s_timer_restart (loop);
        start = s_mono_us ();
        for (int i = 0; i < signins; i++) {
            jobs [i].loop = loop;
            jobs [i].result = SB_PASSWORD_MALFORMED;
            jobs [i].cpu_ns = 0;
            if (sb_offload_submit (pool, s_signin_work, s_signin_done, &jobs [i]))
                s_die ("the pool refused a sign-in");
        }
        while (loop->done < signins)
            if (sb_reactor_run_once (loop->reactor, 100))
                s_die ("the reactor failed");
        double wall_s = (double) (s_mono_us () - start) / 1e6;
        double cpu_ms = 0;
        for (int i = 0; i < signins; i++)
            cpu_ms += (double) jobs [i].cpu_ns / 1e6;
        char what [64];
        snprintf (what, sizeof what, "hashing on %d thread%s", pools [p], pools [p] > 1 ? "s" : "");
        s_timer_report (loop, what);
        snprintf (line [p], sizeof line [p],
                  "  %d thread%s: %d sign-in%s in %.2f s: %.2f sign-ins/s, %.0f ms CPU each",
                  pools [p], pools [p] > 1 ? "s" : " ", signins, signins > 1 ? "s" : "", wall_s,
                  signins / wall_s,
                  cpu_ms / signins);
        sb_offload_destroy (&pool);
    }
    printf ("sb_password_verify on the offload pool (workers/sb_offload.h):\n");
    for (size_t p = 0; p < sizeof pools / sizeof pools [0]; p++)
        printf ("%s\n", line [p]);
    sb_reactor_timer_free (loop->reactor, loop->timer);
    sb_reactor_destroy (&loop->reactor);
    free (loop);
    return 0;
}


//  ---------------------------------------------------------------------
//  tokens

//  Reads the hex key at `path` into `key` (`size` bytes at most); its
//  length in bytes, or -1 with a message.
static int
s_key_file (const char *path, uint8_t *key, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        fprintf (stderr, "sb-oauth-bench: cannot open %s\n", path);
        return -1;
    }
    char text [S_KEY_FILE_MAX + 1];
    size_t len = fread (text, 1, S_KEY_FILE_MAX, file);
    fclose (file);
    while (len > 0 && (text [len - 1] == '\n' || text [len - 1] == ' '))
        len--;
    if (len == 0 || len % 2 || len / 2 > size) {
        fprintf (stderr, "sb-oauth-bench: %s holds no hex key of at most %zu bytes\n", path, size);
        return -1;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int high = sb_hex_digit (text [2 * i]), low = sb_hex_digit (text [2 * i + 1]);
        if (high < 0 || low < 0) {
            fprintf (stderr, "sb-oauth-bench: %s is not hex\n", path);
            return -1;
        }
        key [i] = (uint8_t) (high * 16 + low);
    }
    return (int) (len / 2);
}

static int
s_tokens (long count, const char *audience, const char *tenant, const char *key_file,
          const char *private_file, const char *kid)
{
    uint8_t key [256];
    const char *path = private_file ? private_file : key_file;
    int key_len = path ? s_key_file (path, key, sizeof key) : -1;
    if (key_len < 0)
        return 2;
    if (private_file && (key_len != SB_ED25519_KEY_LEN || !kid || !sb_jwks_kid_valid (kid))) {
        fprintf (stderr, "sb-oauth-bench: an Ed25519 private key is 32 bytes and needs --kid\n");
        return 2;
    }
    int64_t now_s = sb_clock_wall_ms () / 1000;
    for (long i = 1; i <= count; i++) {
        sb_token_claims_t claims;
        memset (&claims, 0, sizeof claims);
        snprintf (claims.tenant, sizeof claims.tenant, "%s", tenant);
        snprintf (claims.subject, sizeof claims.subject, "user:%ld", i);
        snprintf (claims.client_id, sizeof claims.client_id, "%s", "sb-oauth-bench");
        snprintf (claims.scope, sizeof claims.scope, "%s", "mcp:tools mcp:write");
        snprintf (claims.audience, sizeof claims.audience, "%s", audience);
        claims.issued_at = now_s;
        claims.expires_at = now_s + 3600;
        char *token = private_file ? sb_token_issue_eddsa (&claims, key, kid)
                                   : sb_token_issue (&claims, key, (size_t) key_len);
        if (!token) {
            fprintf (stderr, "sb-oauth-bench: cannot issue a token (tenant? key?)\n");
            return 1;
        }
        printf ("%s\n", token);
        free (token);
    }
    sb_crypto_wipe (key, sizeof key);
    return 0;
}

static void
s_usage (void)
{
    fprintf (stderr,
             "usage: sb-oauth-bench jwt [-r rounds]\n"
             "       sb-oauth-bench password [-k sign-ins per pool]\n"
             "       sb-oauth-bench tokens -n N --audience URL --tenant T\n"
             "                      (--key-file F | --private-key-file F --kid K)\n");
}

int
main (int argc, char *argv [])
{
    if (argc < 2) {
        s_usage ();
        return 2;
    }
    const char *command = argv [1];
    long rounds = 5, signins = 8, count = 0;
    const char *audience = NULL, *tenant = NULL, *key_file = NULL, *private_file = NULL;
    const char *kid = NULL;
    for (int i = 2; i < argc; i++) {
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        char *end = NULL;
        if (!value) {
            s_usage ();
            return 2;
        }
        if (strcmp (argv [i], "-r") == 0)
            rounds = strtol (value, &end, 10);
        else
        if (strcmp (argv [i], "-k") == 0)
            signins = strtol (value, &end, 10);
        else
        if (strcmp (argv [i], "-n") == 0)
            count = strtol (value, &end, 10);
        else
        if (strcmp (argv [i], "--audience") == 0)
            audience = value;
        else
        if (strcmp (argv [i], "--tenant") == 0)
            tenant = value;
        else
        if (strcmp (argv [i], "--key-file") == 0)
            key_file = value;
        else
        if (strcmp (argv [i], "--private-key-file") == 0)
            private_file = value;
        else
        if (strcmp (argv [i], "--kid") == 0)
            kid = value;
        else {
            s_usage ();
            return 2;
        }
        if (end && *end) {
            fprintf (stderr, "sb-oauth-bench: %s wants a number, not %s\n", argv [i], value);
            return 2;
        }
        i++;
    }
    if (strcmp (command, "jwt") == 0) {
        if (rounds < 1 || rounds > S_MAX_ROUNDS) {
            fprintf (stderr, "sb-oauth-bench: -r is 1 to %d\n", S_MAX_ROUNDS);
            return 2;
        }
        return s_jwt ((int) rounds);
    }
    if (strcmp (command, "password") == 0) {
        if (signins < 1 || signins > S_MAX_SIGNINS) {
            fprintf (stderr, "sb-oauth-bench: -k is 1 to %d\n", S_MAX_SIGNINS);
            return 2;
        }
        return s_password ((int) signins);
    }
    if (strcmp (command, "tokens") == 0) {
        if (count < 1 || count > S_MAX_TOKENS_OUT || !audience || !tenant
        ||  (!key_file == !private_file)) {
            fprintf (stderr, "sb-oauth-bench: tokens needs -n (1 to %d), --audience, --tenant "
                             "and one of --key-file, --private-key-file\n", S_MAX_TOKENS_OUT);
            return 2;
        }
        return s_tokens (count, audience, tenant, key_file, private_file, kid);
    }
    s_usage ();
    return 2;
}
