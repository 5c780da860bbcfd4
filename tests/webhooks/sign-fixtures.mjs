// tests/webhooks/sign-fixtures.mjs OUT — requests signed by the providers'
// own libraries, for sb_wh_verify to judge (tests/38_workers_wh_verify_libs.c).
//
//   stripe                     stripe.webhooks.generateTestHeaderString
//   github                     @octokit/webhooks-methods sign
//   standard                   standardwebhooks Webhook.sign (webhook-* headers)
//   standard (svix-* headers)  svix Webhook.sign
//   shopify, slack, hmac       node:crypto, by each provider's published recipe
//                              (no library in the lock signs these)
//
// Writes one JSON line per request to OUT:
//   {"name", "scheme", "options", "secrets": [the endpoint's, current first],
//    "headers": [[lowercase name, value]…], "body": base64, "now": unix s,
//    "verdict": "ok" | "refused" | "challenge" | "bad_request",
//    "key", "type" (when ok: the event sb_wh_verify must read)}
// For each library: the good request, a tampered body, a wrong secret, a
// stale and a future timestamp (the schemes that have one), a replay of the
// good request ten minutes later, the previous secret during a rotation
// overlap, several signatures during a roll, and missing headers.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import Stripe from 'stripe';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';

if (process.argv.length !== 3) {
    console.error('usage: node sign-fixtures.mjs OUT');
    process.exit(2);
}
const out = process.argv[2];
const now = Math.floor(Date.now() / 1000);
const lines = [];
const b64 = (text) => Buffer.from(text, 'utf8').toString('base64');
const secretText = () => randomBytes(24).toString('hex');
const whsec = () => 'whsec_' + randomBytes(24).toString('base64');

function add (name, scheme, secrets, headers, body, verdict, event = {}, options = {}, at = now) {
    lines.push(JSON.stringify({
        name, scheme, options, secrets, headers: Object.entries(headers), body: b64(body), now: at,
        verdict, key: event.key ?? '', type: event.type ?? '',
    }));
}

// A body tampered after signing: one character changed.
const tamper = (body) => body.replace('"', "'");

// ---------------------------------------------------------------- stripe
{
    const stripe = new Stripe('sk_test_switchboard');
    const secret = 'whsec_' + secretText();
    const old = 'whsec_' + secretText();
    const body = JSON.stringify({ id: 'evt_1Sw1tchb0ard', object: 'event', type: 'invoice.paid',
                                  data: { object: { id: 'in_1', amount_paid: 4200 } } });
    const header = (s, t = now, payload = body) =>
        stripe.webhooks.generateTestHeaderString({ payload, secret: s, timestamp: t });
    const ev = { key: 'evt_1Sw1tchb0ard', type: 'invoice.paid' };
    add('stripe good', 'stripe', [secret], { 'stripe-signature': header(secret) }, body, 'ok', ev);
    add('stripe tampered', 'stripe', [secret], { 'stripe-signature': header(secret) }, tamper(body), 'refused');
    add('stripe wrong secret', 'stripe', [secret], { 'stripe-signature': header(old) }, body, 'refused');
    add('stripe stale', 'stripe', [secret], { 'stripe-signature': header(secret, now - 301) }, body, 'refused');
    add('stripe future', 'stripe', [secret], { 'stripe-signature': header(secret, now + 301) }, body, 'refused');
    add('stripe within tolerance', 'stripe', [secret], { 'stripe-signature': header(secret, now - 299) }, body, 'ok', ev);
    add('stripe replayed later', 'stripe', [secret], { 'stripe-signature': header(secret) }, body, 'refused', {},
        {}, now + 600);
    add('stripe tolerance option', 'stripe', [secret], { 'stripe-signature': header(secret, now - 900) }, body, 'ok',
        ev, { tolerance_s: 1000 });
    // A roll: Stripe signs with both secrets; the endpoint knows either one.
    const both = header(secret) + ',' + header(old).split(',')[1];
    add('stripe roll, new secret', 'stripe', [secret], { 'stripe-signature': both }, body, 'ok', ev);
    add('stripe roll, old secret', 'stripe', [old], { 'stripe-signature': both }, body, 'ok', ev);
    add('stripe overlap, previous secret', 'stripe', [secret, old], { 'stripe-signature': header(old) }, body, 'ok', ev);
    add('stripe missing header', 'stripe', [secret], {}, body, 'refused');
    const noId = JSON.stringify({ object: 'event', type: 'invoice.paid' });
    add('stripe no event id', 'stripe', [secret], { 'stripe-signature': header(secret, now, noId) }, noId, 'bad_request');
}

// ---------------------------------------------------------------- github
{
    const secret = secretText();
    const old = secretText();
    const body = JSON.stringify({ action: 'opened', number: 7, repository: { full_name: 'acme/app' } });
    const sig = await octokitSign(secret, body);
    const hdr = (s) => ({ 'x-hub-signature-256': s, 'x-github-event': 'pull_request',
                          'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' });
    const ev = { key: '72d3162e-cc78-11e3-81ab-4c9367dc0958', type: 'pull_request.opened' };
    add('github good', 'github', [secret], hdr(sig), body, 'ok', ev);
    add('github tampered', 'github', [secret], hdr(sig), tamper(body), 'refused');
    add('github wrong secret', 'github', [secret], hdr(await octokitSign(old, body)), body, 'refused');
    add('github overlap, previous secret', 'github', [secret, old], hdr(await octokitSign(old, body)), body, 'ok', ev);
    add('github missing header', 'github', [secret], { 'x-github-delivery': 'd1' }, body, 'refused');
    add('github sha1 only', 'github', [secret], { 'x-hub-signature': 'sha1=' + createHmac('sha1', secret).update(body).digest('hex'),
                                                  'x-github-delivery': 'd1' }, body, 'refused');
    const ping = JSON.stringify({ zen: 'Design for failure.', hook_id: 1 });
    add('github ping', 'github', [secret], { 'x-hub-signature-256': await octokitSign(secret, ping), 'x-github-event': 'ping',
                                             'x-github-delivery': 'd-ping' }, ping, 'ok', { key: 'd-ping', type: 'ping' });
    add('github no delivery id', 'github', [secret], { 'x-hub-signature-256': sig, 'x-github-event': 'pull_request' },
        body, 'bad_request');
}

// ------------------------------------------------- standard (standardwebhooks)
{
    const secret = whsec();
    const old = whsec();
    const body = JSON.stringify({ type: 'contact.created', timestamp: new Date(now * 1000).toISOString(),
                                  data: { id: 'c_1', email: 'a@example.com' } });
    const id = 'msg_2bXl0k3ZQfPq7';
    const hdr = (s, t = now, msgId = id, payload = body) => ({
        'webhook-id': msgId, 'webhook-timestamp': String(t),
        'webhook-signature': new StandardWebhook(s).sign(msgId, new Date(t * 1000), payload),
    });
    const ev = { key: id, type: 'contact.created' };
    add('standard good', 'standard', [secret], hdr(secret), body, 'ok', ev);
    add('standard tampered', 'standard', [secret], hdr(secret), tamper(body), 'refused');
    add('standard wrong secret', 'standard', [secret], hdr(old), body, 'refused');
    add('standard stale', 'standard', [secret], hdr(secret, now - 301), body, 'refused');
    add('standard future', 'standard', [secret], hdr(secret, now + 301), body, 'refused');
    add('standard replayed later', 'standard', [secret], hdr(secret), body, 'refused', {}, {}, now + 600);
    const other = hdr(secret);
    other['webhook-id'] = 'msg_other';
    add('standard id swapped', 'standard', [secret], other, body, 'refused');
    const roll = hdr(secret);
    roll['webhook-signature'] = hdr(old)['webhook-signature'] + ' ' + roll['webhook-signature'];
    add('standard several v1', 'standard', [secret], roll, body, 'ok', ev);
    add('standard overlap, previous secret', 'standard', [secret, old], hdr(old), body, 'ok', ev);
    const noTs = hdr(secret);
    delete noTs['webhook-timestamp'];
    add('standard missing timestamp', 'standard', [secret], noTs, body, 'refused');
    add('standard missing all', 'standard', [secret], {}, body, 'refused');
}

// ------------------------------------------------------- standard (svix)
{
    const secret = whsec();
    const old = whsec();
    const body = JSON.stringify({ type: 'invoice.created', data: { id: 'inv_9' } });
    const id = 'msg_svix_1';
    const hdr = (s, t = now) => ({
        'svix-id': id, 'svix-timestamp': String(t),
        'svix-signature': new SvixWebhook(s).sign(id, new Date(t * 1000), body),
    });
    const ev = { key: id, type: 'invoice.created' };
    add('svix good', 'standard', [secret], hdr(secret), body, 'ok', ev);
    add('svix tampered', 'standard', [secret], hdr(secret), tamper(body), 'refused');
    add('svix wrong secret', 'standard', [secret], hdr(old), body, 'refused');
    add('svix stale', 'standard', [secret], hdr(secret, now - 301), body, 'refused');
    add('svix future', 'standard', [secret], hdr(secret, now + 301), body, 'refused');
    add('svix overlap, previous secret', 'standard', [secret, old], hdr(old), body, 'ok', ev);
}

// ----------------------------------------------------- shopify (node:crypto)
{
    const secret = secretText();
    const old = secretText();
    const body = JSON.stringify({ id: 820982911946154500, email: 'jon@example.com' });
    const hdr = (s, payload = body) => ({
        'x-shopify-hmac-sha256': createHmac('sha256', s).update(payload, 'utf8').digest('base64'),
        'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043',
    });
    const ev = { key: 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043', type: 'orders/create' };
    add('shopify good', 'shopify', [secret], hdr(secret), body, 'ok', ev);
    add('shopify tampered', 'shopify', [secret], hdr(secret), tamper(body), 'refused');
    add('shopify wrong secret', 'shopify', [secret], hdr(old), body, 'refused');
    add('shopify overlap, previous secret', 'shopify', [secret, old], hdr(old), body, 'ok', ev);
}

// ------------------------------------------------------- slack (node:crypto)
{
    const secret = secretText();
    const body = JSON.stringify({ type: 'event_callback', event_id: 'Ev08MFMKH6', event: { type: 'app_mention' } });
    const hdr = (s, t = now, payload = body) => ({
        'x-slack-request-timestamp': String(t),
        'x-slack-signature': 'v0=' + createHmac('sha256', s).update(`v0:${t}:${payload}`).digest('hex'),
    });
    add('slack good', 'slack', [secret], hdr(secret), body, 'ok', { key: 'Ev08MFMKH6', type: 'app_mention' });
    add('slack tampered', 'slack', [secret], hdr(secret), tamper(body), 'refused');
    add('slack wrong secret', 'slack', [secret], hdr(secretText()), body, 'refused');
    add('slack stale', 'slack', [secret], hdr(secret, now - 301), body, 'refused');
    const challenge = JSON.stringify({ token: 'x', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P',
                                       type: 'url_verification' });
    add('slack url_verification', 'slack', [secret], hdr(secret, now, challenge), challenge, 'challenge');
}

// -------------------------------------------------- generic hmac (node:crypto)
{
    const secret = secretText();
    const body = 'order=42&state=paid';
    const options = { header: 'X-Acme-Signature', algorithm: 'sha512', encoding: 'base64', prefix: 'sha512=',
                      id_header: 'x-acme-delivery', type_header: 'x-acme-event' };
    const sig = 'sha512=' + createHmac('sha512', secret).update(body).digest('base64');
    add('hmac good', 'hmac', [secret], { 'x-acme-signature': sig, 'x-acme-delivery': 'del-1', 'x-acme-event': 'order.paid' },
        body, 'ok', { key: 'del-1', type: 'order.paid' }, options);
    add('hmac tampered', 'hmac', [secret], { 'x-acme-signature': sig, 'x-acme-delivery': 'del-1' }, body + '0',
        'refused', {}, options);
    add('hmac no delivery id', 'hmac', [secret], { 'x-acme-signature': sig }, body, 'bad_request', {}, options);
    const sha1 = createHmac('sha1', secret).update(body).digest('hex');
    add('hmac sha1 hex', 'hmac', [secret], { 'x-signature': sha1 }, body, 'ok',
        { key: createHash('sha256').update(body).digest('hex') },
        { algorithm: 'sha1' });
}

writeFileSync(out, lines.join('\n') + '\n');
console.log(`sign-fixtures: ${lines.length} requests written to ${out}`);
