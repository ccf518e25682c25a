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

export async function request(method, path, { params, body, signal } = {}) {
  let url = path;
  if (params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') search.set(name, value);
    }
    const text = search.toString();
    if (text) url += `?${text}`;
  }
  const init = { method, signal, headers: { Accept: 'application/json' } };
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
  if (!response.ok) throw new ApiError(response.status, typeof data === 'object' ? data : { error: data });
  return data;
}

export const get = (path, params, signal) => request('GET', path, { params, signal });
export const post = (path, body) => request('POST', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const del = path => request('DELETE', path);
