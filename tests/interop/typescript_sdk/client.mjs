// An MCP client application built on the official MCP TypeScript SDK (1.x), with a person at the browser.
//
//   node client.mjs <server url> <username> <password> [--call-again-after-expiry]
//
// The SDK does the OAuth client's part: the 401, RFC 9728 and RFC 8414 discovery, RFC 7591 registration,
// PKCE, the code exchange (transport.finishAuth) and refreshing. The person's part is played here by
// fetching the authorization URL and submitting the server's real login and consent forms with cookies.
// What happened is printed as one JSON object on stdout for tests/e2e/test_typescript_sdk_client.py.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const REDIRECT_URI = "http://127.0.0.1:33418/callback"; // RFC 8252 §7.3 loopback; the person stops there
const WHOLE_RUN_MS = 90_000;

const [serverUrl, username, password, ...flags] = process.argv.slice(2);
if (!serverUrl || !username || !password) {
  console.error("usage: node client.mjs <server url> <username> <password> [--call-again-after-expiry]");
  process.exit(2);
}
const callAgainAfterExpiry = flags.includes("--call-again-after-expiry");
const mcpUrl = new URL("/star/mcp", serverUrl);
const sdkVersion = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;

setTimeout(() => fail(new Error(`gave up after ${WHOLE_RUN_MS / 1000} s`)), WHOLE_RUN_MS).unref();

// --- Every HTTP request the SDK makes, observed by wrapping fetch (the person's requests are not in it).

const browserFetch = globalThis.fetch;
const requests = []; // {phase, method, path, status, challenge, grant_type, bearer}
let phase = "connect";

const fingerprint = (secret) => createHash("sha256").update(secret).digest("hex").slice(0, 12);

globalThis.fetch = async (input, init = {}) => {
  const request = new Request(input, init);
  const entry = { phase, method: request.method, path: new URL(request.url).pathname };
  const authorization = request.headers.get("authorization");
  if (authorization?.startsWith("Bearer ")) entry.bearer = fingerprint(authorization.slice(7));
  if (entry.path === "/o/token/") entry.grant_type = new URLSearchParams(await request.clone().text()).get("grant_type");
  if (entry.path === "/o/register/") entry.registered_scope = JSON.parse(await request.clone().text()).scope ?? null;
  if (request.method === "POST" && entry.path === mcpUrl.pathname) {
    entry.rpc = JSON.parse(await request.clone().text()).method;
  }
  requests.push(entry);
  const response = await browserFetch(request);
  entry.status = response.status;
  const challenge = response.headers.get("www-authenticate");
  if (challenge) entry.challenge = challenge;
  return response;
};

// --- The OAuth client's storage and the app's browser hand-off: SDK interface OAuthClientProvider.

class MemoryOAuthProvider {
  constructor() {
    this.saved = {};
    this.authorizationUrls = []; // what the app would open in the person's browser, in order
    this.tokensReceived = []; // {fingerprint, scope, expires_in, at}
  }
  get redirectUrl() {
    return REDIRECT_URI;
  }
  get clientMetadata() {
    return {
      client_name: "TypeScript SDK test agent",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  state() {
    this.saved.state = randomBytes(16).toString("base64url");
    return this.saved.state;
  }
  clientInformation() {
    return this.saved.clientInformation;
  }
  saveClientInformation(clientInformation) {
    this.saved.clientInformation = clientInformation;
  }
  tokens() {
    return this.saved.tokens;
  }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
    this.tokensReceived.push({
      phase,
      access_token: fingerprint(tokens.access_token),
      scope: tokens.scope,
      expires_in: tokens.expires_in,
      at: Date.now(),
    });
  }
  redirectToAuthorization(authorizationUrl) {
    this.authorizationUrls.push(authorizationUrl.href);
  }
  saveCodeVerifier(codeVerifier) {
    this.saved.codeVerifier = codeVerifier;
  }
  codeVerifier() {
    return this.saved.codeVerifier;
  }
  discoveryState() {
    return this.saved.discovery;
  }
  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "client") delete this.saved.clientInformation;
    if (scope === "all" || scope === "tokens") delete this.saved.tokens;
    if (scope === "all" || scope === "verifier") delete this.saved.codeVerifier;
    if (scope === "all" || scope === "discovery") delete this.saved.discovery;
  }
}

// --- The person at the browser: real forms, real cookies, redirects followed by hand.

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[entity.toLowerCase()];
    if (named) return named;
    return String.fromCodePoint(entity[1].toLowerCase() === "x" ? parseInt(entity.slice(2), 16) : Number(entity.slice(1)));
  });
}

function attributes(source) {
  const found = {};
  for (const match of source.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    found[match[1].toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? "");
  }
  return found;
}

/** The page's sign-in or consent form (not the consent page's "Not you? Sign out"): its action and what a
 * browser submits (fields, ticked boxes, buttons). */
function firstForm(html) {
  const marker = html.search(/name="(password|consent_request)"/);
  if (marker < 0) return undefined;
  const start = html.lastIndexOf("<form", marker);
  if (start < 0) return undefined;
  const end = html.indexOf("</form>", start);
  const body = html.slice(start, end < 0 ? undefined : end);
  const form = { action: attributes(body.match(/<form\b([^>]*)>/i)[1]).action, fields: [], buttons: [] };
  for (const [, tag, source] of body.matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const attrs = attributes(source);
    const type = (attrs.type ?? (tag.toLowerCase() === "button" ? "submit" : "text")).toLowerCase();
    if (!attrs.name || "disabled" in attrs) continue;
    if (type === "submit") form.buttons.push([attrs.name, attrs.value ?? ""]);
    else if (type === "checkbox") {
      if ("checked" in attrs) form.fields.push([attrs.name, attrs.value ?? "on"]);
    } else form.fields.push([attrs.name, attrs.value ?? ""]);
  }
  return form;
}

class Person {
  constructor(username, password) {
    this.username = username;
    this.password = password;
    this.cookies = new Map();
    this.pages = []; // paths of the pages the person was shown, in order
    this.consentsAsked = []; // per consent page, the scopes it asks for (its ticked checkboxes)
  }

  async visit(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    const response = await browserFetch(url, { ...init, headers, redirect: "manual", signal: AbortSignal.timeout(30_000) });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const at = pair.indexOf("=");
      this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
    return response;
  }

  /** From an authorization request to the client's redirect URI; returns the callback's query. */
  async authorize(authorizationUrl) {
    const server = new URL(authorizationUrl).origin;
    let url = authorizationUrl;
    for (let step = 0; step < 12; step++) {
      if (new URL(url).origin !== server) {
        const callback = new URL(url);
        return { redirect_uri: callback.origin + callback.pathname, ...Object.fromEntries(callback.searchParams) };
      }
      const page = await this.visit(url);
      if ([301, 302, 303].includes(page.status)) {
        url = new URL(page.headers.get("location"), url).href;
        continue;
      }
      const html = await page.text();
      if (page.status !== 200) throw new Error(`${url} answered ${page.status}: ${html.slice(0, 300)}`);
      this.pages.push(new URL(url).pathname);
      const form = firstForm(html);
      if (!form) throw new Error(`${url} shows no form: ${html.slice(0, 300)}`);
      let data;
      if (form.fields.some(([name]) => name === "password")) {
        const filled = { username: this.username, password: this.password };
        data = form.fields.map(([name, value]) => [name, filled[name] ?? value]);
      } else {
        this.consentsAsked.push(
          [...html.matchAll(/<input type="checkbox" id="scope-([^"]+)"[^>]* checked/g)].map((m) => m[1]),
        );
        data = [...form.fields, ...form.buttons.filter(([name]) => name === "allow")];
      }
      const target = new URL(form.action || url, url).href;
      const answer = await this.visit(target, {
        method: "POST",
        body: new URLSearchParams(data),
        headers: { origin: server }, // as a browser sends with a form post; Django's CSRF check reads it
      });
      if (![302, 303].includes(answer.status)) {
        throw new Error(`${target} answered ${answer.status}: ${(await answer.text()).slice(0, 300)}`);
      }
      url = new URL(answer.headers.get("location"), target).href;
    }
    throw new Error("the person never got back to the client");
  }
}

// --- The app.

const provider = new MemoryOAuthProvider();
const person = new Person(username, password);
const callbacks = [];
let transport;
let client;

function connectTransport() {
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  client = new Client({ name: "django-mcp-typescript-sdk-test", version: "1.0.0" });
  return client.connect(transport);
}

/** The app's callback handler: the person goes through the pages, the app checks the answer (the SDK
 * 1.x checks neither `state` nor `iss`) and hands the code to the SDK. */
async function letThePersonAuthorize() {
  const authorizationUrl = provider.authorizationUrls.at(-1);
  const callback = await person.authorize(authorizationUrl);
  callbacks.push(callback);
  if (callback.error) throw new Error(`authorization failed: ${callback.error}`);
  if (callback.redirect_uri !== REDIRECT_URI) throw new Error(`sent back to ${callback.redirect_uri}`);
  if (callback.state !== new URL(authorizationUrl).searchParams.get("state")) throw new Error("state mismatch");
  // RFC 9207 §2.4: the authorization response's `iss` must name the server the request went to.
  const issuer = provider.saved.discovery?.authorizationServerMetadata?.issuer;
  if (callback.iss !== issuer) throw new Error(`iss ${callback.iss} is not the issuer ${issuer}`);
  await transport.finishAuth(callback.code);
}

/** Run an MCP step; when the SDK stops for the person (UnauthorizedError), let them answer and retry. */
async function withAuthorization(step) {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await letThePersonAuthorize();
    return await step();
  }
}

const structured = (result) => {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  return result.structuredContent;
};

async function main() {
  // 401 → discovery → registration → authorization URL; the SDK then throws UnauthorizedError.
  await withAuthorization(connectTransport);
  phase = "list_tools";
  const tools = (await client.listTools()).tools.map((tool) => tool.name);

  // whoami needs `profile` too: the server answers 403 insufficient_scope naming "mcp profile".
  phase = "step_up";
  const stepUp = { sdk: "reauthorized" };
  let whoami;
  try {
    whoami = structured(await withAuthorization(() => client.callTool({ name: "whoami", arguments: {} })));
  } catch (error) {
    if (!(error instanceof StreamableHTTPError && error.code === 403)) throw error;
    // SDK 1.x with a refresh token refreshes instead of re-authorizing (typescript-sdk#2255): the refresh
    // grant cannot add a scope (RFC 6749 §6), the retry gets the same 403, and the SDK gives up. The app
    // then does what the SDK should: forgets the tokens, so the next request's 401 names the scope the
    // call needs and the SDK sends the person to consent to it.
    stepUp.sdk = "gave up";
    stepUp.error = `${error.constructor.name}: ${error.message}`;
    phase = "step_up_by_app";
    await provider.invalidateCredentials("tokens");
    whoami = structured(await withAuthorization(() => client.callTool({ name: "whoami", arguments: {} })));
  }

  const result = {
    sdk_version: sdkVersion,
    client_id: provider.saved.clientInformation?.client_id,
    issuer: provider.saved.discovery?.authorizationServerMetadata?.issuer,
    authorization_requests: provider.authorizationUrls.map((url) => Object.fromEntries(new URL(url).searchParams)),
    callbacks: callbacks.map(({ code, ...rest }) => ({ ...rest, code: Boolean(code) })),
    pages: person.pages,
    consents_asked: person.consentsAsked,
    tools,
    whoami,
    step_up: stepUp,
  };

  if (callAgainAfterExpiry) {
    // Wait out the access token (bounded by its expires_in), then use the same session again.
    const last = provider.tokensReceived.at(-1);
    const expiresAt = last.at + last.expires_in * 1000;
    if (!(last.expires_in <= 30)) throw new Error(`access token lives ${last.expires_in} s; start the server shorter`);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 1000));
    phase = "after_expiry";
    const pagesBefore = person.pages.length;
    result.whoami_after_expiry = structured(await client.callTool({ name: "whoami", arguments: {} }));
    result.pages_after_expiry = person.pages.slice(pagesBefore);
    result.expired_access_token = last.access_token;
  }

  result.tokens_received = provider.tokensReceived.map(({ at, ...rest }) => rest);
  result.requests = requests;
  await transport.close();
  return result;
}

function fail(error) {
  console.error(error?.stack ?? String(error));
  console.error(JSON.stringify({ pages: person.pages, callbacks, requests }, null, 2));
  process.exit(1);
}

main().then((result) => {
  console.log(JSON.stringify(result, null, 2));
  process.exit(0);
}, fail);
