// The MCP TypeScript SDK 2.x client's providers for agents without a person, against the live server:
//
//   node machine.mjs <client-credentials | private-key-jwt | cross-app-access> '<json settings>'
//
// settings: {server, clientId, clientSecret?, privateKeyPem?, algorithm?, scope,
//            idp?: {tokenEndpoint, idToken, clientId, clientSecret}}
// The SDK does the whole OAuth part: 401 → RFC 9728 → RFC 8414 → the token request (client_credentials
// with client_secret_basic or private_key_jwt; or the RFC 7523 jwt-bearer grant with an ID-JAG that
// `requestJwtAuthorizationGrant` got from the IdP by RFC 8693 token exchange) → tools/call whoami.
// Prints {"whoami": <structured result>} as one JSON line for tests/e2e/test_machine_clients.py.

import {
  Client,
  ClientCredentialsProvider,
  CrossAppAccessProvider,
  PrivateKeyJwtProvider,
  StreamableHTTPClientTransport,
  requestJwtAuthorizationGrant,
} from "@modelcontextprotocol/client";

const WHOLE_RUN_MS = 60_000;
setTimeout(() => {
  console.error(`gave up after ${WHOLE_RUN_MS / 1000} s`);
  process.exit(1);
}, WHOLE_RUN_MS).unref();

const [mode, json] = process.argv.slice(2);
const settings = JSON.parse(json);
const expectedIssuer = settings.server;

function provider() {
  if (mode === "client-credentials") {
    return new ClientCredentialsProvider({
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      scope: settings.scope,
      expectedIssuer,
    });
  }
  if (mode === "private-key-jwt") {
    return new PrivateKeyJwtProvider({
      clientId: settings.clientId,
      privateKey: settings.privateKeyPem,
      algorithm: settings.algorithm,
      scope: settings.scope,
      expectedIssuer,
    });
  }
  if (mode === "cross-app-access") {
    return new CrossAppAccessProvider({
      clientId: settings.clientId,
      clientSecret: settings.clientSecret,
      expectedIssuer,
      assertion: async (context) => {
        const grant = await requestJwtAuthorizationGrant({
          tokenEndpoint: settings.idp.tokenEndpoint,
          audience: context.authorizationServerUrl,
          resource: context.resourceUrl,
          idToken: settings.idp.idToken,
          clientId: settings.idp.clientId,
          clientSecret: settings.idp.clientSecret,
          scope: settings.scope,
          fetchFn: context.fetchFn,
        });
        return grant.jwtAuthGrant;
      },
    });
  }
  throw new Error(`unknown mode ${mode}`);
}

const transport = new StreamableHTTPClientTransport(new URL("/star/mcp", settings.server), {
  authProvider: provider(),
});
const client = new Client({ name: "machine-client", version: "1.0.0" });
try {
  await client.connect(transport);
  const result = await client.callTool({ name: "whoami", arguments: {} });
  console.log(JSON.stringify({ whoami: result.structuredContent }));
  await client.close();
  process.exit(0);
} catch (error) {
  console.error(error?.stack || String(error));
  process.exit(1);
}
