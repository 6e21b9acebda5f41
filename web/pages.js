// One component per page of the client.

import { html, useState, useEffect, useCallback, useRef } from './vendor/htm-preact.js';
import { Chirp, ApiError } from './api.js';
import { Alert, Avatar, Composer, Feed, FollowButton, Link, Tweet, UserRow, navigate, Time } from './components.js';
import { count, fieldErrors, length } from './util.js';

function useTitle(title) {
  useEffect(() => { document.title = title ? `${title} · chirp` : 'chirp'; }, [title]);
}

// Moves focus to the page's heading when the page changes, for screen readers
// and keyboards; not on the page the app opens with, where the reader starts
// at the top anyway (and focusing would force a style update, 10-20 ms on a
// first load, before that page is done).
let opening = true;
export function opened() { opening = false; }

function Heading({ children, className }) {
  const ref = useRef();
  const [focus] = useState(!opening);
  useEffect(() => { if (focus && ref.current) ref.current.focus({ preventScroll: true }); }, []);
  return html`<h1 tabindex="-1" ref=${ref} class=${className}>${children}</h1>`;
}

function Field({ id, label, error, hint, ...input }) {
  const described = [hint && id + '-hint', error && id + '-error'].filter(Boolean).join(' ') || undefined;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input id=${id} aria-invalid=${error ? 'true' : 'false'} aria-describedby=${described} ...${input} />
    ${hint && html`<p class="hint" id=${id + '-hint'}>${hint}</p>`}
    ${error && html`<p class="field-error" id=${id + '-error'}>${error}</p>`}
  </div>`;
}

export function Home({ me, firstPage }) {
  useTitle('Home');
  const [fresh, setFresh] = useState([]);
  const [initial] = useState(() => { const page = firstPage.data; firstPage.data = null; return page; });
  const load = useCallback((cursor) => Chirp.timeline(cursor), []);
  return html`<div>
    <${Heading}>Home<//>
    <${Composer} me=${me} onPosted=${(t) => setFresh([t])} />
    <${Feed} label="Home timeline" load=${load} initial=${initial} poll=${4000} fresh=${fresh}
      empty="Nothing here yet. Follow people (try Search) or write your first tweet."
      render=${(t, remove) => html`<${Tweet} key=${t.id} tweet=${t} me=${me} onDeleted=${remove} />`} />
  </div>`;
}

export function Login({ onSession }) {
  useTitle('Log in');
  const [form, setForm] = useState({ username: '', password: '' });
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault(); setBusy(true); setError(null);
    try { onSession(await Chirp.login(form.username.trim(), form.password)); navigate('/', { replace: true }); }
    catch (err) { setError(err); } finally { setBusy(false); }
  };
  const f = fieldErrors(error);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return html`<div class="auth">
    <${Heading}>Log in to chirp<//>
    <form onSubmit=${submit} novalidate>
      <${Field} id="login-username" label="Username" autocomplete="username" required value=${form.username} onInput=${set('username')} error=${f.username} />
      <${Field} id="login-password" label="Password" type="password" autocomplete="current-password" required value=${form.password} onInput=${set('password')} error=${f.password} />
      <${Alert} error=${error} />
      <button class="button wide" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
    </form>
    <p>New here? <${Link} href="/signup">Create an account<//></p>
  </div>`;
}

export function Signup({ onSession }) {
  useTitle('Sign up');
  const [form, setForm] = useState({ email: '', username: '', name: '', password: '' });
  const [pending, setPending] = useState(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);

  const register = async (e) => {
    e && e.preventDefault(); setBusy(true); setError(null);
    try { setPending(await Chirp.register(form)); setSent(!e); setCode(''); }
    catch (err) { setError(err); } finally { setBusy(false); }
  };
  const verify = async (e) => {
    e.preventDefault(); setBusy(true); setError(null);
    try { onSession(await Chirp.verify(pending.email, code.trim())); navigate('/', { replace: true }); }
    catch (err) { setError(err); } finally { setBusy(false); }
  };
  const f = fieldErrors(error);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });

  if (pending) {
    const minutes = Math.round(pending.expires_in / 60);
    return html`<div class="auth">
      <${Heading}>Enter your code<//>
      <p>We sent a 6-digit code to <strong>${pending.email}</strong>. It is valid for ${minutes} minute${minutes === 1 ? '' : 's'}.</p>
      <p class="note">Running chirp on its embedded defaults (no <code>CHIRP_SMTP_URL</code>)? No email is sent: the code is printed in the server's log.</p>
      <form onSubmit=${verify} novalidate>
        <${Field} id="signup-code" label="Verification code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6"
          required value=${code} onInput=${(e) => setCode(e.target.value)} error=${f.code} />
        <${Alert} error=${error} />
        ${sent && !error && html`<p role="status" class="muted">A new code is on its way.</p>`}
        <button class="button wide" disabled=${busy || code.trim().length !== 6}>${busy ? 'Checking…' : 'Create account'}</button>
      </form>
      <p class="row">
        <button type="button" class="link-button" onClick=${() => register()} disabled=${busy}>Send a new code</button>
        <button type="button" class="link-button" onClick=${() => { setPending(null); setError(null); }}>Start over</button>
      </p>
    </div>`;
  }
  return html`<div class="auth">
    <${Heading}>Create your account<//>
    <form onSubmit=${register} novalidate>
      <${Field} id="signup-email" label="Email" type="email" autocomplete="email" required value=${form.email} onInput=${set('email')} error=${f.email} />
      <${Field} id="signup-username" label="Username" autocomplete="username" required value=${form.username} onInput=${set('username')}
        hint="3–30 letters, digits or _" error=${f.username || (error && error.code === 'username_taken' ? 'That username is taken.' : null)} />
      <${Field} id="signup-name" label="Name" autocomplete="name" required value=${form.name} onInput=${set('name')} error=${f.name} />
      <${Field} id="signup-password" label="Password" type="password" autocomplete="new-password" required value=${form.password} onInput=${set('password')}
        hint="At least 8 characters" error=${f.password} />
      <${Alert} error=${error} />
      <button class="button wide" disabled=${busy}>${busy ? 'Sending a code…' : 'Sign up'}</button>
    </form>
    <p>Have an account? <${Link} href="/login">Log in<//></p>
  </div>`;
}

// `/@name`: lookup by username; before GET /user/lookup existed, a search.
async function findUser(username) {
  try {
    return await Chirp.lookup(username);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    const page = await Chirp.searchUsers(username);
    const u = page.data.find((x) => x.username.toLowerCase() === username.toLowerCase());
    if (!u) throw e;
    return Chirp.user(u.id);
  }
}

export function Profile({ me, username, tab, onMe }) {
  const [user, setUser] = useState(null);
  const [error, setError] = useState(null);
  useTitle(user ? `${user.name} (@${user.username})` : '@' + username);
  useEffect(() => {
    let live = true;
    setUser(null); setError(null);
    findUser(username).then((u) => live && setUser(u)).catch((e) => live && setError(e));
    return () => { live = false; };
  }, [username]);
  const loadTweets = useCallback((cursor) => Chirp.tweetsBy(user.id, cursor), [user && user.id]);
  const loadFollowers = useCallback((cursor) => Chirp.followers(user.id, cursor), [user && user.id]);
  const loadFollowings = useCallback((cursor) => Chirp.followings(user.id, cursor), [user && user.id]);
  if (error) return html`<div><${Heading}>@${username}<//><${Alert} error=${error} message=${error.status === 404 ? 'No user has this name.' : ''} /></div>`;
  if (!user) return html`<p class="muted" role="status">Loading…</p>`;
  const own = me && me.id === user.id;
  const base = '/@' + user.username;
  const tabs = [['', 'Tweets', user.tweets_count], ['followers', 'Followers', user.followers_count], ['followings', 'Following', user.followings_count]];
  return html`<div>
    <section class="profile" aria-label="Profile">
      <div class="profile-top">
        <${Avatar} user=${user} size=${96} />
        ${own ? html`<${Link} href="/settings" class="button secondary">Edit profile<//>`
          : me && html`<${FollowButton} user=${user} onChange=${setUser} />`}
      </div>
      <${Heading} className="profile-name">${user.name}<//>
      <p class="muted">@${user.username}</p>
      ${user.bio && html`<p class="bio">${user.bio}</p>`}
      <p class="muted">Joined <time datetime=${user.created_at}>${new Date(user.created_at).toLocaleDateString(undefined, { month: 'long', year: 'numeric' })}</time></p>
      <p class="counts"><strong>${count(user.followings_count)}</strong> Following · <strong>${count(user.followers_count)}</strong> ${user.followers_count === 1 ? 'Follower' : 'Followers'}</p>
    </section>
    <nav class="tabs" aria-label="Profile sections">
      ${tabs.map(([t, label, n]) => html`<${Link} href=${t ? base + '/' + t : base} aria-current=${tab === t ? 'page' : undefined}>${label} <span class="muted">${count(n)}</span><//>`)}
    </nav>
    ${tab === '' && html`<${Feed} key=${'t' + user.id} label=${'Tweets by @' + user.username} load=${loadTweets} empty="No tweets yet."
      render=${(t, remove) => html`<${Tweet} key=${t.id} tweet=${t} me=${me} onDeleted=${remove} />`} />`}
    ${tab !== '' && html`<${Feed} key=${tab + user.id} list="ul" label=${tab === 'followers' ? 'Followers' : 'Following'}
        load=${tab === 'followers' ? loadFollowers : loadFollowings}
        empty=${tab === 'followers' ? 'No followers yet.' : 'Not following anyone yet.'}
        render=${(u) => html`<${UserRow} key=${u.id} user=${u} me=${me} />`} />`}
  </div>`;
}

export function Settings({ me, onMe, onLogout }) {
  useTitle('Edit profile');
  const [form, setForm] = useState({ name: me.name, bio: me.bio || '' });
  const [error, setError] = useState(null);
  const [avatarError, setAvatarError] = useState(null);
  const [saved, setSaved] = useState('');
  const [progress, setProgress] = useState(null);
  const save = async (e) => {
    e.preventDefault(); setError(null); setSaved('');
    try { onMe(await Chirp.updateMe({ name: form.name, bio: form.bio })); setSaved('Profile saved.'); }
    catch (err) { setError(err); }
  };
  const pickAvatar = async (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (!file) return;
    setAvatarError(null); setSaved('');
    const fd = new FormData();
    fd.append('avatar', file, file.name);
    setProgress(0);
    try { onMe(await Chirp.setAvatar(fd, setProgress)); setSaved('Avatar updated.'); }
    catch (err) { setAvatarError(err); } finally { setProgress(null); }
  };
  const removeAvatar = async () => {
    setAvatarError(null);
    try { onMe(await Chirp.removeAvatar()); setSaved('Avatar removed.'); } catch (err) { setAvatarError(err); }
  };
  const f = fieldErrors(error);
  const bioLeft = 160 - length(form.bio);
  return html`<div class="settings">
    <${Heading}>Edit profile<//>
    <section aria-labelledby="avatar-heading" class="avatar-edit">
      <h2 id="avatar-heading">Avatar</h2>
      <${Avatar} user=${me} size=${96} />
      <div>
        <input type="file" id="avatar-file" class="sr-only" accept="image/jpeg,image/png,image/gif,image/webp" onChange=${pickAvatar} />
        <label for="avatar-file" class="button secondary file-button">Upload a picture</label>
        ${me.avatar_url && html`<button type="button" class="button secondary" onClick=${removeAvatar}>Remove</button>`}
        ${progress !== null && html`<progress max="1" value=${progress} aria-label="Uploading avatar"></progress>`}
        <${Alert} error=${avatarError} />
      </div>
    </section>
    <form onSubmit=${save} novalidate>
      <${Field} id="settings-name" label="Name" maxlength="50" required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} error=${f.name} />
      <div class="field">
        <label for="settings-bio">Bio</label>
        <textarea id="settings-bio" rows="3" aria-describedby="bio-left" aria-invalid=${f.bio || bioLeft < 0 ? 'true' : 'false'} value=${form.bio}
          onInput=${(e) => setForm({ ...form, bio: e.target.value })}></textarea>
        <p class=${'hint' + (bioLeft < 0 ? ' over' : '')} id="bio-left">${bioLeft} characters left</p>
        ${f.bio && html`<p class="field-error">${f.bio}</p>`}
      </div>
      <${Alert} error=${error && !f.name && !f.bio ? error : null} />
      ${saved && html`<p role="status" class="saved">${saved}</p>`}
      <button class="button" disabled=${bioLeft < 0}>Save</button>
      <${Link} href=${'/@' + me.username} class="button secondary">View profile<//>
    </form>
    <section aria-labelledby="session-heading" class="session">
      <h2 id="session-heading">Session</h2>
      <p class="muted">Signed in as @${me.username} (${me.email}).</p>
      <button type="button" class="button secondary" onClick=${onLogout}>Log out</button>
    </section>
  </div>`;
}

export function Search({ me, query }) {
  const params = new URLSearchParams(query);
  const q = params.get('q') || '';
  const type = params.get('type') === 'users' ? 'users' : 'tweets';
  const [text, setText] = useState(q);
  useTitle(q ? `Search: ${q}` : 'Search');
  useEffect(() => setText(q), [q]);
  const go = (t, kind) => navigate('/search?' + new URLSearchParams({ q: t, type: kind }).toString());
  const loadTweets = useCallback((cursor) => Chirp.searchTweets(q, cursor), [q]);
  const loadUsers = useCallback((cursor) => Chirp.searchUsers(q, cursor), [q]);
  return html`<div>
    <${Heading}>Search<//>
    <form role="search" class="search-form" onSubmit=${(e) => { e.preventDefault(); go(text.trim(), type); }}>
      <label for="search-q" class="sr-only">Search chirp</label>
      <input id="search-q" type="search" placeholder=${'Words, a "quoted phrase", or a username'} value=${text} onInput=${(e) => setText(e.target.value)} />
      <button class="button">Search</button>
    </form>
    <nav class="tabs" aria-label="Search in">
      <${Link} href=${'/search?' + new URLSearchParams({ q, type: 'tweets' })} aria-current=${type === 'tweets' ? 'page' : undefined}>Tweets<//>
      <${Link} href=${'/search?' + new URLSearchParams({ q, type: 'users' })} aria-current=${type === 'users' ? 'page' : undefined}>People<//>
    </nav>
    ${!q ? html`<p class="muted empty">Search tweets by words or a "quoted phrase", and people by username.</p>`
      : type === 'tweets'
        ? html`<${Feed} key=${'st' + q} label="Tweets found" load=${loadTweets} empty="No tweets match."
            render=${(t, remove) => html`<${Tweet} key=${t.id} tweet=${t} me=${me} onDeleted=${remove} />`} />`
        : html`<${Feed} key=${'su' + q} list="ul" label="People found" load=${loadUsers} empty="No one matches."
            render=${(u) => html`<${UserRow} key=${u.id} user=${u} me=${me} />`} />`}
  </div>`;
}

export function Notifications({ live, onRead }) {
  useTitle('Notifications');
  const [arrived, setArrived] = useState([]);
  const [error, setError] = useState(null);
  const [readAll, setReadAll] = useState(false);
  const load = useCallback((cursor) => Chirp.notifications(cursor), []);
  useEffect(() => live.subscribe((n) => setArrived((cur) => [n, ...cur])), []);
  const markAll = async () => {
    setError(null);
    try { await Chirp.markRead(); setReadAll(true); onRead(); } catch (e) { setError(e); }
  };
  const render = (n) => html`<${NotificationItem} key=${n.id} n=${n} forceRead=${readAll} onRead=${onRead} />`;
  return html`<div>
    <div class="page-head">
      <${Heading}>Notifications<//>
      <button type="button" class="button secondary" onClick=${markAll}>Mark all as read</button>
    </div>
    <${Alert} error=${error} />
    ${arrived.length > 0 && html`<div class="feed-list live" aria-live="polite">${arrived.map(render)}</div>`}
    <${Feed} label="Notifications" load=${load} empty="No notifications yet. When someone likes your tweets, you will see it here." render=${render} />
  </div>`;
}

function NotificationItem({ n, forceRead, onRead }) {
  const [read, setRead] = useState(n.read);
  const isRead = read || forceRead;
  const mark = async () => {
    try { await Chirp.markRead([n.id]); setRead(true); onRead(); } catch { /* stays unread */ }
  };
  const tweet = n.tweet || {};
  return html`<article class=${'notification' + (isRead ? '' : ' unread')} aria-label=${(isRead ? '' : 'Unread: ') + n.message}>
    <${Avatar} user=${n.actor} size=${40} />
    <div>
      <p><span aria-hidden="true" class="heart">♥ </span><${Link} href=${'/@' + n.actor.username} class="name">${n.actor.name}<//> <span class="muted">(@${n.actor.username})</span> liked your tweet · <span class="muted"><${Time} iso=${n.created_at} /></span></p>
      ${tweet.content && html`<p class="muted quote">${tweet.content}</p>`}
      ${!isRead && html`<button type="button" class="link-button" onClick=${mark}>Mark as read</button>`}
    </div>
  </article>`;
}

export function NotFound() {
  useTitle('Not found');
  return html`<div><${Heading}>Page not found<//><p><${Link} href="/">Go home<//></p></div>`;
}

