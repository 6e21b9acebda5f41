// The public JSON API, and nothing else. The session token lives in an
// HttpOnly cookie the page cannot read; requests that change state carry the
// session's CSRF token (from /api/v1/session) in X-CSRF-Token.

const BASE = '/api/v1';
let csrf = null;
const listeners = new Set();

export function setCsrf(token) { csrf = token; }

// Called with no arguments when the server says the session has ended.
export function onSessionEnded(fn) { listeners.add(fn); return () => listeners.delete(fn); }

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 0 ? 'network' : 'http_' + status);
    this.errors = problem.errors || null;
    this.retryAfter = retryAfter ? Number(retryAfter) : null;
  }
}

function sessionEnded(path, status) {
  if (status === 401 && !path.startsWith('/session') && path !== '/login') listeners.forEach((fn) => fn());
}

export async function api(method, path, body, { signal } = {}) {
  // A GET carries no header of its own, so that it is the same request as
  // index.html's `<link rel="preload" as="fetch" crossorigin>` for it
  // (same URL, mode cors, credentials same-origin) and takes its answer.
  const headers = {};
  if (method !== 'GET') headers.accept = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const init = { method, headers, credentials: 'same-origin', signal };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(BASE + path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { detail: 'network error' });
  }
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    sessionEnded(path, r.status);
    throw new ApiError(r.status, data || {}, r.headers.get('retry-after'));
  }
  return data;
}

// A started request whose answer is wanted later (the first timeline page is
// asked for while the session is still being checked; index.html has the
// browser start both before the modules are even loaded).
export function prefetch(path) {
  const p = api('GET', path);
  p.catch(() => {});
  return p;
}

// Multipart upload with progress (fetch cannot report upload progress).
export function upload(method, path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, BASE + path);
    xhr.setRequestHeader('accept', 'application/json');
    if (csrf) xhr.setRequestHeader('x-csrf-token', csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else {
        sessionEnded(path, xhr.status);
        reject(new ApiError(xhr.status, data || {}, xhr.getResponseHeader('retry-after')));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, { detail: 'network error' }));
    xhr.send(form);
  });
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const str = s.toString();
  return str ? '?' + str : '';
};

export const Chirp = {
  session: () => api('GET', '/session'),
  login: (username, password) => api('POST', '/session', { username, password }),
  logout: () => api('DELETE', '/session'),
  register: (form) => api('POST', '/register', form),
  verify: (email, code) => api('POST', '/session/verify-register', { email, code }),
  timeline: (cursor) => api('GET', '/timeline' + q({ cursor })),
  timelinePath: '/timeline',
  tweetsBy: (authorId, cursor) => api('GET', '/tweet' + q({ author_id: authorId, cursor })),
  searchTweets: (search, cursor) => api('GET', '/tweet' + q({ search, cursor })),
  searchUsers: (search, cursor) => api('GET', '/user' + q({ search, cursor })),
  post: (content) => api('POST', '/tweet', { content }),
  postWithMedia: (form, onProgress) => upload('POST', '/tweet', form, onProgress),
  deleteTweet: (id) => api('DELETE', `/tweet/${id}`),
  like: (id) => api('POST', `/tweet/${id}/like`),
  unlike: (id) => api('DELETE', `/tweet/${id}/unlike`),
  view: (id) => api('PATCH', `/tweet/${id}/views`),
  user: (id) => api('GET', `/user/${id}`),
  lookup: (username) => api('GET', '/user/lookup' + q({ username })),
  follow: (id) => api('POST', `/user/${id}/follow`),
  unfollow: (id) => api('DELETE', `/user/${id}/unfollow`),
  followers: (id, cursor) => api('GET', `/user/${id}/followers` + q({ cursor })),
  followings: (id, cursor) => api('GET', `/user/${id}/followings` + q({ cursor })),
  updateMe: (fields) => api('PATCH', '/me', fields),
  setAvatar: (form, onProgress) => upload('PUT', '/me/avatar', form, onProgress),
  removeAvatar: () => api('DELETE', '/me/avatar'),
  notifications: (cursor) => api('GET', '/notifications' + q({ cursor })),
  unreadCount: () => api('GET', '/notifications/unread-count'),
  markRead: (ids) => api('POST', '/notifications/read', ids ? { ids } : {}),
};
