// The HTTP API, as the pages use it. Every failure becomes an ApiError with the server's message and, for a query
// that cannot be read, the character position it names.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `request failed with status ${status}`);
    this.status = status;
    this.position = body?.position;
    this.expected = body?.expected;
    this.body = body;
  }
}

// The session's anti-forgery token, sent with every request that changes something (the node refuses such a
// request with the session cookie and without it).
let csrf = null;
export function setCsrf(token) {
  csrf = token ?? null;
}

// quiet: a 401 is the caller's to show (the sign-in form), not a sign that the session ended.
export async function request(method, path, { params, body, signal, quiet, retried } = {}) {
  let url = path;
  if (params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') search.set(name, value);
    }
    const text = search.toString();
    if (text) url += `?${text}`;
  }
  // X-Requested-With: a 401 then carries no Basic challenge, which would open the browser's own prompt.
  const init = { method, signal, headers: { Accept: 'application/json', 'X-Requested-With': 'logwell-ui' } };
  if (csrf && method !== 'GET' && method !== 'HEAD') init.headers['X-Logwell-Csrf'] = csrf;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { error: `cannot reach Logwell: ${e.message}` });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') ?? '';
  const data = type.includes('json') ? await response.json() : await response.text();
  if (response.status === 401 && !quiet) window.dispatchEvent(new CustomEvent('logwell:signed-out', { detail: data?.error }));
  // The session changed under this page (signed in again in another tab): take its token and try once more.
  if (response.status === 403 && csrf && !retried && typeof data?.error === 'string' && data.error.includes('X-Logwell-Csrf')) {
    const current = await fetch('/api/v1/access/session', { headers: { Accept: 'application/json', 'X-Requested-With': 'logwell-ui' } });
    if (current.ok) {
      csrf = (await current.json()).csrf ?? null;
      return request(method, path, { params, body, signal, quiet, retried: true });
    }
  }
  if (!response.ok) throw new ApiError(response.status, typeof data === 'object' ? data : { error: data });
  return data;
}

export const get = (path, params, signal) => request('GET', path, { params, signal });
export const post = (path, body) => request('POST', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const del = path => request('DELETE', path);
