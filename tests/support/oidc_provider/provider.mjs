// A real OpenID Connect provider for the tests: the certified `oidc-provider`
// package with its own development login and consent pages. Configuration comes
// as JSON in the OP_CONFIG environment variable:
//   {port, clients: [...], accounts: {login: {email, email_verified, groups, ...}}}
// Any password is accepted for a login; its claims come from `accounts`.
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OP_CONFIG);
const issuer = `http://127.0.0.1:${config.port}`;

function signingKey(type, options, kid, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

const provider = new Provider(issuer, {
  clients: config.clients,
  jwks: {
    keys: [
      signingKey('rsa', { modulusLength: 2048 }, 'rsa-1', 'RS256'),
      signingKey('ec', { namedCurve: 'P-256' }, 'ec-1', 'ES256'),
    ],
  },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'ES256', 'HS256'],
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, sub) {
    const claims = config.accounts[sub] || {};
    return { accountId: sub, async claims() { return { sub, ...claims }; } };
  },
});
provider.proxy = false;

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider ready at ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
