/*  gateway/sb_tls.h — the gateway's TLS server context: the certificate and
    key files (--tls-cert-file, --tls-key-file) loaded into an OpenSSL
    SSL_CTX that offers HTTP/2 and HTTP/1.1 by ALPN and speaks TLS 1.2 or
    newer, and reloaded on SIGHUP.

    A reload builds a new SSL_CTX from the files and, only when the pair
    loads and matches, makes it the one new handshakes use. Connections
    already open keep the context they were accepted with (each SSL holds a
    reference to its SSL_CTX; dropping ours only drops our reference), so a
    reload drops no connection. A pair that does not load is logged and the
    old context stays. */
#ifndef SB_TLS_H_INCLUDED
#define SB_TLS_H_INCLUDED

#include "sb_attr.h"

#include <openssl/ssl.h>

#define SB_MAX_TLS_ERROR        512     /* the sentence a failed load is told in, bytes */

typedef struct _sb_tls_t sb_tls_t;

/*  Loads `cert_file` (PEM, the certificate then its chain) and `key_file`
    (PEM private key) into a new TLS context. NULL with the reason logged
    (tls_invalid) when a file cannot be read, is not PEM, or the key is not
    the certificate's. */
SB_MUST_USE sb_tls_t *sb_tls_new (const char *cert_file, const char *key_file);

void sb_tls_destroy (sb_tls_t **self_p);

/*  The SSL_CTX new handshakes use now. Borrowed: valid until the next
    successful sb_tls_reload or sb_tls_destroy. */
SSL_CTX *sb_tls_ctx (sb_tls_t *self);

/*  Reads the two files again. 0 when the new pair replaced the old one
    (tls_reloaded, with the new certificate's serial and expiry); -1 when it
    did not load, with tls_reload_failed logged and the old pair kept. */
SB_MUST_USE int sb_tls_reload (sb_tls_t *self);

#endif
