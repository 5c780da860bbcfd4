/*  gateway/sb_gateway.h — the gateway component: the HTTP front door of the
    farm. One h2o event loop serves HTTP (POST /mcp, /healthz, the OAuth
    protected-resource metadata) and drives the broker DEALER socket; no
    threads, no blocking calls. sb-gateway's main is a thin wrapper; tests
    may also run the component in-process.

    Routes:
      POST /mcp                               JSON-RPC (MCP), Bearer token required
      GET /mcp                                SSE stream for server messages / resumption
      DELETE /mcp                             ends the Mcp-Session-Id session
      GET /healthz                            200 {"status":"ok"}
      GET /.well-known/oauth-protected-resource   RFC 9728 metadata
      GET /.well-known/oauth-authorization-server RFC 8414 metadata (oauth/sb_oauth_meta.h),
                                              when --public-url is https or loopback http
      GET /.well-known/jwks.json              the EdDSA key set (--token-jwks-file or the token service's)
      /authorize /token /revoke /register     relayed as HTTP jobs to the token service
                                              (sb_http_job.c), with that metadata
      /admin/…                                the same, behind --admin-key-file's operator key
      POST /webhooks/{endpoint}               relayed as webhook/receive jobs to the webhook
                                              service (sb_webhook.c), raw body and headers
      anything else                           404 JSON */
#ifndef SB_GATEWAY_H_INCLUDED
#define SB_GATEWAY_H_INCLUDED

#include <stdint.h>

#include "sb_attr.h"
#include "sb_config.h"

#define SB_MAX_HTTP_BODY_HARD   (4u * (1u << 20))   /* no route takes a larger body; h2o's own
                                                       limit is the largest route's, at most this */
#define SB_MAX_PUBLIC_URL_LEN   512                 /* --public-url, bytes */
#define SB_GATEWAY_ACCEPT_BATCH 64                  /* connections accepted per wake-up */
#define SB_GATEWAY_LOOP_MS      100                 /* longest loop wait: stop flag latency */
#define SB_GATEWAY_DRAIN_MS     3000                /* on stop: longest wait for pending calls */

typedef struct _sb_gateway_t sb_gateway_t;

/*  The option table of sb-gateway (for sb_config_new). */
extern const sb_option_t sb_gateway_options [];

/*  Creates a gateway from loaded options: reads the token key, the session
    key and the connectors, binds the listener, connects the broker socket. Returns
    NULL after logging why. */
sb_gateway_t *sb_gateway_new (sb_config_t *config) SB_MUST_USE;

/*  Destroys the gateway and nulls the caller's pointer. Idempotent. */
void sb_gateway_destroy (sb_gateway_t **self_p);

/*  Runs the loop until sb_gateway_stop, then stops accepting, fails the
    tasks whose jobs it runs (sb_call_tasks_stop), gives pending calls and
    its requests to the broker (the task store's acknowledgements of those
    failures among them) up to SB_GATEWAY_DRAIN_MS to finish (then answers
    them with a timeout), flushes responses and returns 0. */
int sb_gateway_run (sb_gateway_t *self) SB_MUST_USE;

/*  Asks the loop to stop. Async-signal-safe (sets a flag). */
void sb_gateway_stop (sb_gateway_t *self);

/*  Asks the loop to reload the connectors and, with TLS, the certificate
    and key (what SIGHUP does).
    Async-signal-safe (sets a flag); the next turn of the loop reloads. */
void sb_gateway_request_reload (sb_gateway_t *self);

/*  Reloads the connectors now; call on the loop's thread. Re-reads the
    --connectors folder: when the new set fails to load, keeps the old one,
    logs connectors_reload_failed with the loader's sentence and returns -1
    (nothing is sent). Otherwise swaps the sets, sends
    notifications/tools/list_changed, prompts/list_changed and
    resources/list_changed (for each list that publishes differently) on
    every open standalone GET stream of this gateway, and
    notifications/resources/updated on a session's streams for each URI it
    subscribed to whose contents changed or that disappeared; returns 0.
    Calls in flight keep the set they started with until they end. */
int sb_gateway_reload (sb_gateway_t *self);

/*  One turn of the loop: a requested reload first, then events for at most
    `timeout_ms`. sb_gateway_run turns it until stopped; tests that drive
    the gateway in-process turn it themselves. */
void sb_gateway_poll (sb_gateway_t *self, int timeout_ms);

/*  The TCP port actually listened on (useful with port 0). */
int sb_gateway_port (sb_gateway_t *self);

#endif
