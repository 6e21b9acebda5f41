// The shell: session, routing, navigation, the live notification stream.

import { html, render, useState, useEffect, useRef } from './vendor/htm-preact.js';
import { Chirp, setCsrf, onSessionEnded, prefetch } from './api.js';
import { Link, navigate, Avatar } from './components.js';
import { Home, Login, Signup, Profile, Settings, Search, Notifications, NotFound, opened } from './pages.js';

// Asked for at once, beside the session check, so the home timeline is on
// screen one round trip sooner (index.html's preloads have the browser send
// both while it is still loading these modules; these calls take their answers).
const sessionRequest = prefetch('/session');
// On `/`, the first page is drawn with the page itself (`data`, taken once by Home).
const firstPage = { current: location.pathname === '/' ? prefetch(Chirp.timelinePath) : null, data: null };
const startup = sessionRequest.then(async (s) => {
  if (firstPage.current) {
    const p = firstPage.current;
    firstPage.current = null;
    firstPage.data = await p.catch(() => null);
  }
  return s;
});
// Both are usually in by the time these modules have run: waiting for them a
// moment (not more) draws the page at once instead of "Loading…" first.
let knownSession;
await Promise.race([startup.then((s) => { knownSession = s; setCsrf(s.csrf_token); }, () => {}), new Promise((r) => setTimeout(r, 100))]);

function useLocation() {
  const [loc, setLoc] = useState({ path: location.pathname, query: location.search });
  useEffect(() => {
    const update = () => setLoc({ path: location.pathname, query: location.search });
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return loc;
}

// Live notifications: one EventSource (the cookie authenticates it), shared
// by the badge and the notifications page.
function useLive(me) {
  const subs = useRef(new Set());
  const [unread, setUnread] = useState(0);
  useEffect(() => {
    if (!me) return;
    let closed = false;
    const refresh = () => Chirp.unreadCount().then((r) => !closed && setUnread(r.unread)).catch(() => {});
    refresh();
    const es = new EventSource('/api/v1/notifications/stream');
    es.addEventListener('notification', (e) => {
      let n;
      try { n = JSON.parse(e.data); } catch { return; }
      setUnread((u) => u + 1);
      subs.current.forEach((fn) => fn(n));
    });
    // After a reconnect, the count may have moved while the stream was down.
    es.addEventListener('open', refresh);
    return () => { closed = true; es.close(); };
  }, [me && me.id]);
  const live = { subscribe: (fn) => { subs.current.add(fn); return () => subs.current.delete(fn); } };
  return { unread, setUnread, live };
}

// Drawn, not emoji: the system may have no emoji font.
const Bird = () => html`<svg class="glyph" viewBox="0 0 32 32" aria-hidden="true" focusable="false"><path fill="currentColor"
  d="M5 23c5 2 12 1 16-5l1.6-4.7L26 12l-3.3-1.2C21.4 7 16.6 6.6 14.5 10.2 10 10.2 7.3 8 6 5.5c-.6 4.8 1.3 7.9 4.6 9.2-2.8 1.3-4.6 3.6-5.6 8.3z" /></svg>`;
const Bell = () => html`<svg class="glyph" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor"
  d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z" /></svg>`;

function Nav({ me, unread, path, onLogout }) {
  const item = (href, label, icon, extra) => html`<li><${Link} href=${href} aria-current=${path === href ? 'page' : undefined}>
    <span class="icon" aria-hidden="true">${icon}</span><span class="label">${label}</span>${extra}<//></li>`;
  const badge = unread > 0 && html`<span class="badge"><span aria-hidden="true">${unread > 99 ? '99+' : unread}</span><span class="sr-only">, ${unread} unread</span></span>`;
  return html`<nav class="nav" aria-label="Main">
    <${Link} href="/" class="brand" aria-label="chirp home"><${Bird} /><span class="label"> chirp</span><//>
    <ul>
      ${item('/', 'Home', '⌂')}
      ${item('/search', 'Search', '⌕')}
      ${item('/notifications', 'Notifications', html`<${Bell} />`, badge)}
      ${item('/@' + me.username, 'Profile', '☺')}
      ${item('/settings', 'Settings', '⚙')}
    </ul>
    <div class="nav-me">
      <${Avatar} user=${me} size=${32} />
      <span class="label">@${me.username}</span>
      <button type="button" class="link-button" onClick=${onLogout}>Log out</button>
    </div>
  </nav>`;
}

function App() {
  const [session, setSession] = useState(knownSession);
  const { path, query } = useLocation();
  const me = session && session.user;
  const { unread, setUnread, live } = useLive(me);

  const start = (s) => { setCsrf(s.csrf_token); setSession(s); };
  const end = () => { setCsrf(null); setSession(null); };
  useEffect(() => {
    startup.then(start, (e) => {
      // An expired cookie would make every request 401: have it cleared.
      if (e.status === 401) Chirp.logout().catch(() => {});
      firstPage.current = null;
      end();
    });
    return onSessionEnded(() => { end(); navigate('/login', { replace: true }); });
  }, []);

  if (session === undefined) return html`<main id="main" class="loading" aria-busy="true"><p class="muted">Loading…</p></main>`;

  const publicPage = path === '/login' || path === '/signup';
  if (!me && !publicPage && !path.startsWith('/@')) {
    // Signed out: the sign-in page, at its own address.
    queueMicrotask(() => navigate('/login', { replace: true }));
    return null;
  }
  if (me && publicPage) { queueMicrotask(() => navigate('/', { replace: true })); return null; }

  const logout = async () => {
    try { await Chirp.logout(); } catch { /* the cookie is cleared anyway, or already gone */ }
    end();
    navigate('/login', { replace: true });
  };
  const setMe = (user) => setSession((s) => ({ ...s, user: { ...s.user, ...user } }));
  const onRead = () => Chirp.unreadCount().then((r) => setUnread(r.unread)).catch(() => {});

  let page;
  const profile = path.match(/^\/@([A-Za-z0-9_]{1,30})(?:\/(followers|followings))?\/?$/);
  if (path === '/login') page = html`<${Login} onSession=${start} />`;
  else if (path === '/signup') page = html`<${Signup} onSession=${start} />`;
  else if (path === '/') page = html`<${Home} me=${me} firstPage=${firstPage} />`;
  else if (profile) page = html`<${Profile} key=${profile[1].toLowerCase()} me=${me} username=${profile[1]} tab=${profile[2] || ''} />`;
  else if (path === '/search') page = html`<${Search} me=${me} query=${query} />`;
  else if (path === '/notifications') page = html`<${Notifications} live=${live} onRead=${onRead} />`;
  else if (path === '/settings') page = html`<${Settings} me=${me} onMe=${setMe} onLogout=${logout} />`;
  else page = html`<${NotFound} />`;

  return html`<div class=${me ? 'shell' : 'shell signed-out'}>
    <a class="skip" href="#main">Skip to content</a>
    ${me ? html`<${Nav} me=${me} unread=${unread} path=${path} onLogout=${logout} />`
      : html`<header class="nav signed-out-bar"><${Link} href="/login" class="brand"><${Bird} /> chirp<//><${Link} href="/signup" class="button">Sign up<//></header>`}
    <main id="main" tabindex="-1">${page}</main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('root'));
// Headings drawn from now on take the focus (pages.js).
opened();
