/*  gateway/sb_tls.c — the gateway's TLS server context, loaded from the
    certificate and key files and swapped whole on reload (see sb_tls.h). */
#include "sb_tls.h"
#include "sb_log.h"

#include <h2o.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_TLS_SERIAL       128     /* a certificate serial in hex, bytes */

struct _sb_tls_t {
    char *cert_file;                    /* --tls-cert-file, read again on reload */
    char *key_file;                     /* --tls-key-file */
    SSL_CTX *ctx;                       /* our reference to the current context */
};

//  Appends OpenSSL's queued reason (if any) to `error` and clears the queue.
static void
s_openssl_reason (char *error, size_t size)
{
    unsigned long code = ERR_peek_last_error ();
    size_t len = strlen (error);
    if (code && len < size)
        snprintf (error + len, size - len, " (%s)", ERR_reason_error_string (code));
    ERR_clear_error ();
}

//  Describes the certificate of `ctx` into `serial` (hex) and `not_after`.
static void
s_describe (SSL_CTX *ctx, char *serial, size_t serial_size, char *not_after, size_t after_size)
{
    snprintf (serial, serial_size, "?");
    snprintf (not_after, after_size, "?");
    X509 *cert = SSL_CTX_get0_certificate (ctx);
    if (!cert)
        return;
    BIGNUM *number = ASN1_INTEGER_to_BN (X509_get0_serialNumber (cert), NULL);
    char *hex = number? BN_bn2hex (number): NULL;
    if (hex)
        snprintf (serial, serial_size, "%s", hex);
    OPENSSL_free (hex);
    BN_free (number);
    BIO *bio = BIO_new (BIO_s_mem ());
    if (bio && ASN1_TIME_print (bio, X509_get0_notAfter (cert))) {
        int n = BIO_read (bio, not_after, (int) after_size - 1);
        if (n > 0)
            not_after [n] = 0;
    }
    BIO_free (bio);
    if (X509_cmp_current_time (X509_get0_notAfter (cert)) < 0)
        sb_log_warn ("tls_expired", "the certificate (serial %s) expired %s: clients will refuse it",
                     serial, not_after);
}

//  A new server context from the two files, or NULL with the reason in
//  `error`. TLS 1.2 at least; HTTP/2 then HTTP/1.1 offered by ALPN.
static SSL_CTX *
s_ctx_new (const char *cert_file, const char *key_file, char *error, size_t size)
{
    error [0] = 0;
    ERR_clear_error ();
    SSL_CTX *ctx = SSL_CTX_new (TLS_server_method ());
    if (!ctx) {
        snprintf (error, size, "cannot create a TLS context");
        goto fail;
    }
    if (!SSL_CTX_set_min_proto_version (ctx, TLS1_2_VERSION)) {
        snprintf (error, size, "cannot require TLS 1.2");
        goto fail;
    }
    SSL_CTX_set_options (ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                            | SSL_OP_CIPHER_SERVER_PREFERENCE);
    FILE *probe = fopen (cert_file, "r");
    if (!probe) {
        snprintf (error, size, "cannot read the certificate file %s: %s", cert_file, strerror (errno));
        goto fail;
    }
    fclose (probe);
    if (SSL_CTX_use_certificate_chain_file (ctx, cert_file) != 1) {
        snprintf (error, size, "the certificate file %s holds no PEM certificate", cert_file);
        goto fail;
    }
    probe = fopen (key_file, "r");
    if (!probe) {
        snprintf (error, size, "cannot read the key file %s: %s", key_file, strerror (errno));
        goto fail;
    }
    EVP_PKEY *key = PEM_read_PrivateKey (probe, NULL, NULL, NULL);
    fclose (probe);
    if (!key) {
        snprintf (error, size, "the key file %s holds no PEM private key", key_file);
        goto fail;
    }
    int used = SSL_CTX_use_PrivateKey (ctx, key);
    EVP_PKEY_free (key);                //  the context holds its own reference
    if (used != 1 || SSL_CTX_check_private_key (ctx) != 1) {
        snprintf (error, size, "the key in %s is not the key of the certificate in %s",
                  key_file, cert_file);
        goto fail;
    }
    h2o_ssl_register_alpn_protocols (ctx, h2o_http2_alpn_protocols);
    return ctx;
fail:
    s_openssl_reason (error, size);
    SSL_CTX_free (ctx);
    return NULL;
}

sb_tls_t *
sb_tls_new (const char *cert_file, const char *key_file)
{
    char error [SB_MAX_TLS_ERROR];
    sb_tls_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cert_file = strdup (cert_file);
    self->key_file = strdup (key_file);
    if (!self->cert_file || !self->key_file)
        goto fail;
    self->ctx = s_ctx_new (cert_file, key_file, error, sizeof error);
    if (!self->ctx) {
        sb_log_error ("tls_invalid", "%s", error);
        goto fail;
    }
    char serial [SB_MAX_TLS_SERIAL], not_after [64];
    s_describe (self->ctx, serial, sizeof serial, not_after, sizeof not_after);
    sb_log_info ("tls_loaded", "cert=%s serial=%s not_after=%s", cert_file, serial, not_after);
    return self;
fail:
    sb_tls_destroy (&self);
    return NULL;
}

void
sb_tls_destroy (sb_tls_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sb_tls_t *self = *self_p;
    SSL_CTX_free (self->ctx);           //  open connections hold their own references
    free (self->cert_file);
    free (self->key_file);
    free (self);
    *self_p = NULL;
}

SSL_CTX *
sb_tls_ctx (sb_tls_t *self)
{
    return self->ctx;
}

int
sb_tls_reload (sb_tls_t *self)
{
    char error [SB_MAX_TLS_ERROR];
    SSL_CTX *fresh = s_ctx_new (self->cert_file, self->key_file, error, sizeof error);
    if (!fresh) {
        sb_log_error ("tls_reload_failed", "%s (the certificate loaded before stays)", error);
        return -1;
    }
    SSL_CTX_free (self->ctx);           //  our reference; handshakes under way keep theirs
    self->ctx = fresh;
    char serial [SB_MAX_TLS_SERIAL], not_after [64];
    s_describe (self->ctx, serial, sizeof serial, not_after, sizeof not_after);
    sb_log_info ("tls_reloaded", "cert=%s serial=%s not_after=%s", self->cert_file, serial, not_after);
    return 0;
}
