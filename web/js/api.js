// The HTTP API of fanout (see CONTRACT.md section 3), with errors turned into ApiError.

export class ApiError extends Error {
  /**
   * kind: 'network' | 'unauthorized' | 'forbidden' | 'not-found' | 'client' | 'server'
   * status: the HTTP status, or 0 when the server could not be reached.
   */
  constructor(kind, status, message) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
  }
}

function kindOf(status) {
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status >= 500) return 'server';
  return 'client';
}

async function messageOf(response) {
  try {
    const body = await response.json();
    if (body && typeof body.message === 'string' && body.message) return body.message;
  } catch {
    // not JSON: fall through to the status text
  }
  return response.statusText || `HTTP ${response.status}`;
}

const TIMEOUT_MS = 15000;

/**
 * getToken() returns the bearer token; onUnauthorized(error) is told about every 401 so
 * the app can ask the user to sign in again.
 */
export function createApi({ getToken, onUnauthorized }) {
  async function request(method, path, { body, headers = {} } = {}) {
    const token = getToken();
    if (!token) {
      const error = new ApiError('unauthorized', 401, 'You are not signed in.');
      onUnauthorized(error);
      throw error;
    }
    const init = {
      method,
      headers: { Accept: 'application/json', Authorization: `Bearer ${token}`, ...headers },
      cache: 'no-store',
      signal: AbortSignal.timeout(TIMEOUT_MS),
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (cause) {
      const timedOut = cause && cause.name === 'TimeoutError';
      throw new ApiError(
        'network',
        0,
        timedOut ? 'The server took too long to answer.' : 'Could not reach the server.',
      );
    }
    if (!response.ok) {
      const error = new ApiError(kindOf(response.status), response.status, await messageOf(response));
      if (error.kind === 'unauthorized') onUnauthorized(error);
      throw error;
    }
    return response.status === 204 ? null : response.json();
  }

  return {
    /** {items, nextCursor} */
    list({ limit, cursor } = {}) {
      const query = new URLSearchParams();
      if (limit) query.set('limit', String(limit));
      if (cursor) query.set('cursor', cursor);
      const qs = query.toString();
      return request('GET', qs ? `/data?${qs}` : '/data');
    },
    get(id) {
      return request('GET', `/data/${encodeURIComponent(id)}`);
    },
    /** {id}; the item is persisted asynchronously. */
    add(data, idempotencyKey) {
      const headers = idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {};
      return request('POST', '/data', { body: data, headers });
    },
  };
}
