// Who the user is. Two modes, chosen by /config.json:
//  - local: POST /_local/token mints a development token (the local stack only);
//  - oidc:  OpenID Connect Authorization Code with PKCE against the stack's issuer.
// Tokens live in sessionStorage (this tab only, gone when it closes), never in localStorage.

const SESSION_KEY = 'fanout.session';
const PKCE_KEY = 'fanout.pkce';
// Treat a token as expired a little early, so a request does not race its expiry.
const EXPIRY_SKEW_MS = 10000;

export class AuthError extends Error {}

export async function loadConfig() {
  let response;
  try {
    response = await fetch('config.json', { cache: 'no-store', headers: { Accept: 'application/json' } });
  } catch {
    throw new AuthError('Could not reach the server to load its configuration.');
  }
  if (!response.ok) throw new AuthError(`The server's configuration could not be loaded (HTTP ${response.status}).`);
  const config = await response.json();
  if (config.mode === 'local') return config;
  if (config.mode === 'oidc') {
    for (const key of ['clientId', 'authorizeUrl', 'tokenUrl']) {
      if (!config[key]) throw new AuthError(`The server's sign-in configuration lacks ${key}.`);
    }
    return config;
  }
  throw new AuthError(`The server's configuration names an unknown sign-in mode: ${config.mode}.`);
}

/** The claims of a JWT, for display only: the API verifies tokens, the browser does not. */
export function decodeClaims(jwt) {
  try {
    const payload = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = payload + '='.repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

function makeSession({ mode, token, idToken, expiresIn, user }) {
  const claims = decodeClaims(token);
  const idClaims = idToken ? decodeClaims(idToken) : {};
  let expiresAt = Number(claims.exp) * 1000;
  if (!Number.isFinite(expiresAt) || expiresAt <= 0) expiresAt = Date.now() + Number(expiresIn || 3600) * 1000;
  const name =
    user || idClaims.preferred_username || idClaims.email || idClaims.name || claims.username || claims.sub || '';
  return { mode, token, idToken: idToken || null, expiresAt, user: String(name) };
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

/** The session kept in this tab, or null. An expired one is returned with expired: true. */
export function restoreSession(mode) {
  let session;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  } catch {
    session = null;
  }
  if (!session || session.mode !== mode || typeof session.token !== 'string') return null;
  return session;
}

export function isExpired(session) {
  return !session || Date.now() >= session.expiresAt - EXPIRY_SKEW_MS;
}

// ---- local mode -------------------------------------------------------------------------

export async function signInLocal(sub, roles) {
  let response;
  try {
    response = await fetch('_local/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ sub, roles }),
      cache: 'no-store',
    });
  } catch {
    throw new AuthError('Could not reach the local stack. Is `make run` still running?');
  }
  let body = {};
  try {
    body = await response.json();
  } catch {
    // keep the empty body; the status explains
  }
  if (!response.ok || typeof body.token !== 'string') {
    const detail = body.message || `HTTP ${response.status}`;
    throw new AuthError(`The local sign-in failed: ${detail}`);
  }
  const session = makeSession({ mode: 'local', token: body.token, expiresIn: body.expiresIn, user: sub });
  saveSession(session);
  return session;
}

// ---- OIDC mode: Authorization Code + PKCE (RFC 7636) ------------------------------------

function base64url(bytes) {
  let text = '';
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(byteCount) {
  const bytes = new Uint8Array(byteCount);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function redirectUri(config) {
  return new URL(config.redirectPath || '/', window.location.origin).href;
}

/** Send the browser to the identity provider. Does not return. */
export async function beginOidcSignIn(config) {
  const verifier = randomString(48);
  const state = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, nonce, hash: window.location.hash }));
  const url = new URL(config.authorizeUrl);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('redirect_uri', redirectUri(config));
  url.searchParams.set('scope', (config.scopes && config.scopes.length ? config.scopes : ['openid']).join(' '));
  url.searchParams.set('state', state);
  url.searchParams.set('nonce', nonce);
  url.searchParams.set('code_challenge', await s256(verifier));
  url.searchParams.set('code_challenge_method', 'S256');
  window.location.assign(url.href);
}

/**
 * When the page is the identity provider's redirect back (?code=…&state=… or ?error=…),
 * exchange the code for tokens and return the new session. Otherwise return null.
 */
export async function completeOidcSignIn(config) {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('code') && !params.has('error')) return null;
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
  } catch {
    saved = null;
  }
  sessionStorage.removeItem(PKCE_KEY);
  // The code is single-use: take it out of the address bar and the history.
  window.history.replaceState(null, '', new URL(config.redirectPath || '/', window.location.origin).pathname + (saved?.hash || ''));

  // State first: an answer this tab did not ask for (a link anyone can craft) is refused before any of
  // its content is looked at, and an error's own text is never shown (a phishing aid on our origin).
  if (!saved || !params.get('state') || saved.state !== params.get('state')) {
    throw new AuthError('That sign-in answer does not belong to this browser tab. Please sign in again.');
  }
  if (params.has('error')) {
    throw new AuthError(
      params.get('error') === 'access_denied'
        ? 'The sign-in was cancelled or refused by the identity provider.'
        : 'The identity provider could not complete the sign-in. Please try again.',
    );
  }
  let response;
  try {
    response = await fetch(config.tokenUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: redirectUri(config),
        client_id: config.clientId,
        code_verifier: saved.verifier,
      }),
      cache: 'no-store',
    });
  } catch {
    throw new AuthError('Could not reach the identity provider to finish signing in.');
  }
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new AuthError(`The identity provider did not issue tokens: ${tokens.error_description || tokens.error || `HTTP ${response.status}`}.`);
  }
  if (tokens.id_token && decodeClaims(tokens.id_token).nonce !== saved.nonce) {
    throw new AuthError('The identity token does not match this sign-in. Please sign in again.');
  }
  // Which token the API's authorizer expects: the access token unless the stack says otherwise.
  const token = config.apiToken === 'id_token' ? tokens.id_token : tokens.access_token;
  if (!token) throw new AuthError('The identity provider returned no token the API can use.');
  const session = makeSession({ mode: 'oidc', token, idToken: tokens.id_token, expiresIn: tokens.expires_in });
  saveSession(session);
  return session;
}

/** Forget the tokens; on OIDC also end the provider's session. Returns true when navigating away. */
export function signOut(config) {
  clearSession();
  sessionStorage.removeItem(PKCE_KEY);
  if (config.mode !== 'oidc' || !config.logoutUrl) return false;
  const back = redirectUri(config);
  const url = new URL(config.logoutUrl);
  url.searchParams.set('client_id', config.clientId);
  url.searchParams.set('logout_uri', back); // Cognito's name
  url.searchParams.set('post_logout_redirect_uri', back); // OpenID Connect RP-initiated logout
  // No id_token_hint: Cognito ignores it, and in Cognito mode the ID token is the API credential,
  // which must not travel in a URL (history, logs, Referer).
  window.location.assign(url.href);
  return true;
}
