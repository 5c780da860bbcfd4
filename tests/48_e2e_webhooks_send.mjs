// tests/48_e2e_webhooks_send.mjs CONFIG.json — the providers' side of
// tests/48_e2e_webhooks.sh: payloads signed by the providers' own npm
// libraries (stripe's generateTestHeaderString, @octokit/webhooks-methods'
// sign, standardwebhooks' and svix's Webhook.sign; Shopify, Slack and the
// generic HMAC with node:crypto exactly as their documentation says)
// POSTed to a farm's /webhooks/{endpoint}, and each answer checked:
//   - a good request 2xx, and 2xx again when sent a second time;
//   - the same body tampered, signed with a wrong secret, or (schemes with a
//     timestamp) 10 minutes old: 401 with no detail;
//   - Slack's url_verification answered with its challenge; a Salesforce
//     outbound message (2 notifications) acknowledged with the SOAP Ack,
//     and refused for another organisation;
//   - an unknown endpoint 404.
// CONFIG: {"gateway": URL, "run": unique text,
//          "expect_file": path, "endpoints": {"stripe": {"id", "secret"}, …
//          "svix" (a standard endpoint), "salesforce" (+ "org")}}.
// Writes to expect_file one line "<endpoint id> <event key>" per event
// that must be stored (once). Prints one line per case; exits 1 when an
// answer is not the expected one.
import { readFileSync, writeFileSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import Stripe from 'stripe';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const run = config.run;
const expected = [];
let failures = 0;

async function post(id, headers, body) {
    const response = await fetch(`${config.gateway}/webhooks/${id}`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
    });
    return { status: response.status, text: await response.text() };
}

function check(name, answer, status, contains) {
    const ok = answer.status === status && (!contains || answer.text.includes(contains));
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${answer.status}${ok ? '' : ` (want ${status}${contains ? ` and ${contains}` : ''}) ${answer.text.slice(0, 200)}`}`);
    if (!ok)
        failures++;
    if (status === 401 && answer.status === 401 && answer.text.replace(/\s/g, '') !== '{"error":"unauthorized"}') {
        console.log(`FAIL ${name}: a 401 says more than {"error": "unauthorized"}: ${answer.text}`);
        failures++;
    }
}

const now = () => Math.floor(Date.now() / 1000);
const stale = () => now() - 600;
const wrong = (secret) => secret.startsWith('whsec_')
    ? 'whsec_' + Buffer.alloc(32, 9).toString('base64') : secret + '-wrong';

// One scheme: sign(body, secret, timestamp) → headers; a good request twice,
// then tampered, wrong secret and (when timed) stale.
async function scheme(name, endpoint, key, body, sign, timed) {
    const id = endpoint.id;
    let headers = await sign(body, endpoint.secret, now());
    check(`${name} signed by its library`, await post(id, headers, body), 200);
    check(`${name} the same again (a provider's retry)`, await post(id, headers, body), 200);
    expected.push(`${id} ${key}`);
    check(`${name} tampered body`, await post(id, headers, body.replace('}', ',"x":1}')), 401);
    headers = await sign(body, wrong(endpoint.secret), now());
    check(`${name} wrong secret`, await post(id, headers, body), 401);
    if (timed) {
        headers = await sign(body, endpoint.secret, stale());
        check(`${name} 10 minutes old`, await post(id, headers, body), 401);
    }
    check(`${name} no signature`, await post(id, {}, body), 401);
}

const e = config.endpoints;
const stripe = new Stripe('sk_test_switchboard');

await scheme('stripe', e.stripe, `evt_${run}_1`,
    JSON.stringify({ id: `evt_${run}_1`, object: 'event', type: 'invoice.paid', data: { object: { id: 'in_1' } } }),
    (payload, secret, timestamp) => ({
        'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }),
    }), true);

await scheme('github', e.github, `gh-${run}-1`,
    JSON.stringify({ action: 'opened', issue: { number: 1 } }),
    async (payload, secret) => ({
        'x-hub-signature-256': await octokitSign(secret, payload),
        'x-github-event': 'issues', 'x-github-delivery': `gh-${run}-1`,
    }), false);

await scheme('shopify', e.shopify, `sh-${run}-1`,
    JSON.stringify({ id: 820982911946154500, email: 'jon@example.com' }),
    (payload, secret) => ({
        'x-shopify-hmac-sha256': createHmac('sha256', secret).update(payload).digest('base64'),
        'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': `sh-${run}-1`,
    }), false);

const slackSign = (payload, secret, timestamp) => ({
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': 'v0=' + createHmac('sha256', secret).update(`v0:${timestamp}:${payload}`).digest('hex'),
});
await scheme('slack', e.slack, `Ev${run}1`,
    JSON.stringify({ type: 'event_callback', event_id: `Ev${run}1`, event: { type: 'message', text: 'hi' } }),
    slackSign, true);
{
    const body = JSON.stringify({ type: 'url_verification', token: 't', challenge: `challenge-${run}` });
    check('slack url_verification', await post(e.slack.id, slackSign(body, e.slack.secret, now()), body),
        200, `challenge-${run}`);
}

await scheme('standard (standardwebhooks)', e.standard, `msg_${run}_1`,
    JSON.stringify({ type: 'contact.created', data: { id: 'c_1' } }),
    (payload, secret, timestamp) => ({
        'webhook-id': `msg_${run}_1`, 'webhook-timestamp': String(timestamp),
        'webhook-signature': new StandardWebhook(secret).sign(`msg_${run}_1`, new Date(timestamp * 1000), payload),
    }), true);

await scheme('standard (svix)', e.svix, `msg_${run}_svix`,
    JSON.stringify({ type: 'user.signup', data: { id: 'u_1' } }),
    (payload, secret, timestamp) => ({
        'svix-id': `msg_${run}_svix`, 'svix-timestamp': String(timestamp),
        'svix-signature': new SvixWebhook(secret).sign(`msg_${run}_svix`, new Date(timestamp * 1000), payload),
    }), true);

await scheme('hmac', e.hmac, `hm-${run}-1`,
    JSON.stringify({ kind: 'erp.order', order: 7 }),
    (payload, secret) => ({
        'x-erp-signature': 'sha512=' + createHmac('sha512', secret).update(payload).digest('base64'),
        'x-erp-id': `hm-${run}-1`,
    }), false);

// Salesforce: an outbound message with two notifications, no signature.
{
    const soap = (org) => `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>${org}</OrganizationId>
   <ActionId>04k5g000000XYZaAAO</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D5g000004bXyZ</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/00D5g000004bXyZ</PartnerUrl>
   <Notification>
    <Id>04l5g${run}A1</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0015g00000AbCdEAAV</sf:Id>
     <sf:Name>Acme</sf:Name>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l5g${run}A2</Id>
    <sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0015g00000AbCdFAAV</sf:Id>
     <sf:Name>Globex</sf:Name>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>`;
    const headers = { 'content-type': 'text/xml; charset=utf-8', soapaction: '""' };
    const id = e.salesforce.id;
    check('salesforce outbound message', await post(id, headers, soap(e.salesforce.org)), 200, '<Ack>true</Ack>');
    check('salesforce the same again', await post(id, headers, soap(e.salesforce.org)), 200, '<Ack>true</Ack>');
    expected.push(`${id} 04l5g${run}A1`, `${id} 04l5g${run}A2`);
    check('salesforce another organisation', await post(id, headers, soap('00D000000000001')), 401);
}

// An unknown endpoint (the 413 is the shell's, with curl: it reads an answer
// that comes before the body was sent).
check('an unknown endpoint', await post(`we_${'A'.repeat(24)}`, {}, '{}'), 404);

writeFileSync(config.expect_file, expected.join('\n') + '\n');
console.log(failures ? `${failures} checks failed` : 'every answer as expected');
process.exit(failures ? 1 : 0);
