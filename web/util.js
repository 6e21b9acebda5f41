// Formatting and messages; no DOM here.

// Formatters are made once: `toLocaleString()` and friends build a new one on
// every call, which cost more than the rest of drawing a page of tweets.
const formatters = new Map();
function formatter(options) {
  const key = JSON.stringify(options);
  let f = formatters.get(key);
  if (!f) formatters.set(key, (f = new Intl.DateTimeFormat(undefined, options)));
  return f;
}
const SHORT = { month: 'short', day: 'numeric' };
const SHORT_YEAR = { year: 'numeric', month: 'short', day: 'numeric' };
// What `toLocaleString()` shows.
const FULL = { year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' };

export function relativeTime(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 10) return 'now';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  if (s < 7 * 86400) return `${Math.floor(s / 86400)}d`;
  const d = new Date(t);
  const sameYear = d.getFullYear() === new Date(now).getFullYear();
  return formatter(sameYear ? SHORT : SHORT_YEAR).format(d);
}

export function fullTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : formatter(FULL).format(d);
}

export function count(n) {
  n = Number(n) || 0;
  if (n < 1000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0).replace(/\.0$/, '') + 'K';
  return (n / 1e6).toFixed(1).replace(/\.0$/, '') + 'M';
}

export const plural = (n, one, many = one + 's') => `${count(n)} ${Number(n) === 1 ? one : many}`;

// Characters as the server counts them (Unicode scalar values).
export const length = (text) => [...text].length;

// Ids are 64-bit integers in strings: compare without losing precision.
export function newer(a, b) {
  if (a.length !== b.length) return a.length > b.length;
  return a > b;
}

// Every problem+json code the API answers with, in words for people.
const MESSAGES = {
  network: 'Cannot reach chirp. Check your connection and try again.',
  validation_failed: 'Some fields need fixing.',
  username_taken: 'That username is taken. Choose another one.',
  email_taken: 'An account with this email already exists. Log in instead.',
  invalid_code: 'That code is wrong or has expired. Check the latest email, or start over to get a new code.',
  too_many_attempts: 'Too many wrong codes: this sign-up is void. Start over to get a new code.',
  invalid_credentials: 'Wrong username or password.',
  rate_limited: 'Too many attempts from your network.',
  unauthorized: 'Your session has ended. Log in again.',
  csrf_failed: 'This request could not be verified as coming from this page. Reload the page and try again.',
  forbidden: 'You are not allowed to do that.',
  not_found: 'Not found: it may have been deleted.',
  cannot_follow_self: 'You cannot follow yourself.',
  unsupported_media_type: 'That file type is not supported. Use JPEG, PNG, GIF or WebP images, or MP4, MOV or WebM video.',
  invalid_media: 'That file could not be read as an image or video. It may be damaged.',
  payload_too_large: 'That file is too large (images up to 16 MB, videos up to 100 MB).',
  malformed_json: 'The request was malformed. Reload the page and try again.',
  malformed_multipart: 'The upload was interrupted or malformed. Try again.',
  service_unavailable: 'chirp is briefly unavailable. Try again in a few seconds.',
  internal_error: 'Something went wrong on our side. Try again.',
  request_timeout: 'That took too long. Try again.',
};

export function problemMessage(err) {
  if (!err) return '';
  let m = MESSAGES[err.code] || err.message || 'Something went wrong.';
  if (err.code === 'validation_failed' && err.errors) {
    m = m.replace(/\.$/, ': ') + Object.entries(err.errors).map(([k, v]) => `${k}: ${[].concat(v).join(', ')}`).join('; ') + '.';
  }
  if ((err.code === 'rate_limited' || err.code === 'too_many_attempts') && err.retryAfter) {
    m += ` Try again in ${err.retryAfter} second${err.retryAfter === 1 ? '' : 's'}.`;
  }
  return m;
}

// Field errors of a validation problem: { field: "message; message" }.
export function fieldErrors(err) {
  const out = {};
  if (err && err.errors) for (const [k, v] of Object.entries(err.errors)) out[k] = [].concat(v).join('; ');
  return out;
}
