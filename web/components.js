// Shared pieces: links, avatars, tweets, feeds, the composer.
// User text is only ever rendered as text (Preact creates text nodes; no
// dangerouslySetInnerHTML anywhere), so it is never interpreted as HTML.

import { html, useState, useEffect, useRef, useCallback } from './vendor/htm-preact.js';
import { Chirp } from './api.js';
import { relativeTime, fullTime, count, plural, length, newer, problemMessage, fieldErrors } from './util.js';

export function navigate(to, { replace = false } = {}) {
  if (to === location.pathname + location.search) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', to);
  dispatchEvent(new PopStateEvent('popstate'));
  window.scrollTo(0, 0);
}

export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

export function Avatar({ user, size = 48 }) {
  const cls = `avatar avatar-${size}`;
  if (user.avatar_url) return html`<img class=${cls} src=${user.avatar_url} alt="" width=${size} height=${size} loading="lazy" />`;
  return html`<span class=${cls + ' avatar-letter'} aria-hidden="true">${(user.name || user.username || '?').trim().charAt(0).toUpperCase()}</span>`;
}

export function Alert({ error, message }) {
  const text = message || problemMessage(error);
  if (!text) return null;
  return html`<p class="alert" role="alert">${text}</p>`;
}

export function Time({ iso }) {
  const [, tick] = useState(0);
  useEffect(() => { const t = setInterval(() => tick((n) => n + 1), 30000); return () => clearInterval(t); }, []);
  // The full date, as a tooltip, is made when the pointer comes: the first
  // date formatter costs more than drawing the whole first page.
  const tooltip = (e) => { e.currentTarget.title = fullTime(iso); };
  return html`<time datetime=${iso} onMouseEnter=${tooltip}>${relativeTime(iso)}</time>`;
}

// Views: counted once per tweet per page load, when at least half of it has
// been on screen.
const viewed = new Set();
const watchers = new Map();
const viewObserver = 'IntersectionObserver' in window ? new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    const w = watchers.get(e.target);
    viewObserver.unobserve(e.target);
    if (!w || viewed.has(w.id)) continue;
    viewed.add(w.id);
    Chirp.view(w.id).then((r) => w.update(r.view_count)).catch(() => viewed.delete(w.id));
  }
}, { threshold: 0.5 }) : null;

function useViewCount(id, ref, onCount) {
  useEffect(() => {
    const el = ref.current;
    if (!el || !viewObserver || viewed.has(id)) return;
    watchers.set(el, { id, update: onCount });
    viewObserver.observe(el);
    return () => { viewObserver.unobserve(el); watchers.delete(el); };
  }, [id]);
}

function Lightbox({ media, onClose }) {
  const ref = useRef();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const closed = () => onClose();
    d.addEventListener('close', closed);
    return () => d.removeEventListener('close', closed);
  }, []);
  return html`<dialog class="lightbox" ref=${ref} aria-label="Image" onClick=${(e) => { if (e.target === ref.current) ref.current.close(); }}>
    <img src=${media.url} alt=${media.description || 'Image'} />
    <form method="dialog"><button class="button" autofocus>Close</button></form>
  </dialog>`;
}

export function MediaGrid({ media }) {
  const [open, setOpen] = useState(null);
  if (!media || media.length === 0) return null;
  const images = media.filter((m) => m.kind === 'image');
  return html`<div class=${'media-grid media-' + Math.min(media.length, 4)}>
    ${media.map((m) => m.kind === 'image'
      ? html`<button type="button" class="media-item" key=${m.id} onClick=${() => setOpen(m)}
          aria-label=${'Open image' + (images.length > 1 ? ` ${images.indexOf(m) + 1} of ${images.length}` : '') + (m.description ? ': ' + m.description : '')}>
          <img src=${m.thumbnail_url || m.url} alt=${m.description || ''} width=${m.width || undefined} height=${m.height || undefined} loading="lazy" />
        </button>`
      : m.kind === 'gifv'
        ? html`<video class="media-item" key=${m.id} src=${m.url} poster=${m.thumbnail_url || undefined} autoplay loop muted playsinline aria-label=${m.description || 'Animated image'}></video>`
        : html`<video class="media-item" key=${m.id} src=${m.url} poster=${m.thumbnail_url || undefined} controls preload="metadata" playsinline aria-label=${m.description || 'Video'}></video>`)}
    ${open && html`<${Lightbox} media=${open} onClose=${() => setOpen(null)} />`}
  </div>`;
}

export function Tweet({ tweet: initial, me, onDeleted }) {
  const [t, setT] = useState(initial);
  const [error, setError] = useState(null);
  const ref = useRef();
  useEffect(() => setT(initial), [initial]);
  useViewCount(initial.id, ref, (views) => setT((cur) => ({ ...cur, view_count: Math.max(cur.view_count, views) })));

  const toggleLike = async () => {
    const liked = !t.liked_by_me;
    setError(null);
    setT((cur) => ({ ...cur, liked_by_me: liked, like_count: Math.max(0, cur.like_count + (liked ? 1 : -1)) }));
    try {
      if (liked) {
        const r = await Chirp.like(t.id);
        setT((cur) => ({ ...cur, like_count: r.like_count, liked_by_me: true }));
      } else await Chirp.unlike(t.id);
    } catch (e) {
      setT((cur) => ({ ...cur, liked_by_me: !liked, like_count: Math.max(0, cur.like_count + (liked ? -1 : 1)) }));
      setError(e);
    }
  };
  const remove = async () => {
    if (!confirm('Delete this tweet?')) return;
    try { await Chirp.deleteTweet(t.id); onDeleted && onDeleted(t.id); } catch (e) { setError(e); }
  };
  const a = t.author;
  const profile = '/@' + a.username;
  return html`<article class="tweet" ref=${ref} data-id=${t.id} aria-labelledby=${'t' + t.id}>
    <${Link} href=${profile} class="tweet-avatar" tabindex="-1" aria-hidden="true"><${Avatar} user=${a} /><//>
    <div class="tweet-body">
      <header class="tweet-head" id=${'t' + t.id}>
        <${Link} href=${profile} class="name">${a.name}<//>
        <span class="muted"> @${a.username} · <${Time} iso=${t.created_at} /></span>
      </header>
      ${t.content && html`<p class="tweet-text">${t.content}</p>`}
      <${MediaGrid} media=${t.media} />
      <div class="tweet-actions">
        <button type="button" class=${'like' + (t.liked_by_me ? ' liked' : '')} aria-pressed=${t.liked_by_me ? 'true' : 'false'}
          aria-label=${(t.liked_by_me ? 'Unlike' : 'Like') + ', ' + plural(t.like_count, 'like')} onClick=${toggleLike}>
          <span aria-hidden="true">${t.liked_by_me ? '♥' : '♡'}</span> <span class="like-count">${count(t.like_count)}</span>
        </button>
        <span class="views muted" title="Views"><span aria-hidden="true">◉</span> <span class="view-count">${count(t.view_count)}</span><span class="sr-only"> views</span></span>
        ${me && me.id === a.id && html`<button type="button" class="link-button muted" onClick=${remove}>Delete</button>`}
      </div>
      <${Alert} error=${error} />
    </div>
  </article>`;
}

export function UserRow({ user: initial, me }) {
  const [u, setU] = useState(initial);
  return html`<li class="user-row">
    <${Avatar} user=${u} />
    <div class="user-row-text">
      <${Link} href=${'/@' + u.username} class="name">${u.name}<//>
      <div class="muted">@${u.username} · ${plural(u.followers_count, 'follower')}</div>
      ${u.bio && html`<p class="bio">${u.bio}</p>`}
    </div>
    ${me && me.id !== u.id && html`<${FollowButton} user=${u} onChange=${setU} />`}
  </li>`;
}

export function FollowButton({ user, onChange }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const following = !!user.followed_by_me;
  const toggle = async () => {
    setBusy(true); setError(null);
    try {
      if (following) {
        await Chirp.unfollow(user.id);
        onChange({ ...user, followed_by_me: false, followers_count: Math.max(0, user.followers_count - 1) });
      } else {
        const u = await Chirp.follow(user.id);
        onChange({ ...user, ...u, followed_by_me: true });
      }
    } catch (e) { setError(e); } finally { setBusy(false); }
  };
  return html`<div class="follow">
    <button type="button" class=${following ? 'button secondary' : 'button'} disabled=${busy} onClick=${toggle}
      aria-label=${(following ? 'Unfollow @' : 'Follow @') + user.username}>${following ? 'Unfollow' : 'Follow'}</button>
    <${Alert} error=${error} />
  </div>`;
}

const NONE = [];

// A keyset-paged list: the next page loads when its end comes into view (or
// on the button, for keyboards). `poll` (home only) checks the first page for
// newer tweets and offers them in a banner instead of moving what is read.
// `initial`, a first page already fetched, is drawn at once.
export function Feed({ load, render, empty, poll = 0, fresh = NONE, label, list = 'div', initial = null }) {
  const [items, setItems] = useState(initial ? initial.data : []);
  const [cursor, setCursor] = useState(initial ? initial.next_cursor : undefined);
  const [done, setDone] = useState(initial ? !initial.next_cursor : false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState(null);
  const [waiting, setWaiting] = useState([]);
  const sentinel = useRef();
  const state = useRef({});
  state.current = { items, cursor, done, loading };

  const more = useCallback(async () => {
    const s = state.current;
    if (s.loading || s.done) return;
    setLoading(true); setError(null);
    try {
      const page = await load(s.cursor);
      setItems((cur) => { const seen = new Set(cur.map((x) => x.id)); return cur.concat(page.data.filter((x) => !seen.has(x.id))); });
      setCursor(page.next_cursor);
      setDone(!page.next_cursor);
    } catch (e) { setError(e); } finally { setLoading(false); }
  }, [load]);

  useEffect(() => { if (!initial) more(); }, []);

  useEffect(() => {
    const el = sentinel.current;
    if (!el || !('IntersectionObserver' in window)) return;
    const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) more(); }, { rootMargin: '600px' });
    io.observe(el);
    return () => io.disconnect();
  }, [more, items.length]);

  // Tweets this page itself made (the composer) go on top at once.
  useEffect(() => {
    if (fresh.length) setItems((cur) => { const seen = new Set(cur.map((x) => x.id)); return fresh.filter((x) => !seen.has(x.id)).concat(cur); });
  }, [fresh]);

  useEffect(() => {
    if (!poll) return;
    const check = async () => {
      if (document.hidden || state.current.items.length === 0 && !state.current.done) return;
      try {
        const page = await load(undefined);
        const top = state.current.items[0];
        const newerOnes = top ? page.data.filter((x) => newer(x.id, top.id)) : page.data;
        setWaiting(newerOnes);
      } catch { /* the next poll tries again */ }
    };
    const t = setInterval(check, poll);
    return () => clearInterval(t);
  }, [poll, load]);

  const showWaiting = () => {
    setItems((cur) => { const seen = new Set(cur.map((x) => x.id)); return waiting.filter((x) => !seen.has(x.id)).concat(cur); });
    setWaiting([]);
    window.scrollTo({ top: 0 });
  };

  useEffect(() => {
    if (items.length && !state.current.marked) { state.current.marked = true; performance.mark('feed-first-page'); }
  }, [items.length]);

  const remove = (id) => setItems((cur) => cur.filter((x) => x.id !== id));
  return html`<section class="feed" aria-label=${label} aria-busy=${loading ? 'true' : 'false'}>
    ${waiting.length > 0 && html`<button type="button" class="new-banner" onClick=${showWaiting}>
      Show ${waiting.length === 20 ? '20+' : waiting.length} new tweet${waiting.length === 1 ? '' : 's'}</button>`}
    <${list} class=${'feed-list' + (list === 'ul' ? ' users' : '')}>${items.map((x) => render(x, remove))}<//>
    ${!loading && done && items.length === 0 && !error && html`<p class="empty muted">${empty}</p>`}
    <${Alert} error=${error} />
    <div ref=${sentinel} class="feed-end">
      ${loading ? html`<p class="muted" role="status">Loading…</p>`
        : !done && html`<button type="button" class="button secondary" onClick=${more}>Load more</button>`}
    </div>
  </section>`;
}

const ACCEPT = 'image/jpeg,image/png,image/gif,image/webp,video/mp4,video/quicktime,video/webm';

export function Composer({ me, onPosted, autofocus }) {
  const [text, setText] = useState('');
  const [files, setFiles] = useState([]);
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  const [local, setLocal] = useState('');
  const left = 280 - length(text);
  const hasVideo = files.some((f) => f.file.type.startsWith('video/'));

  useEffect(() => () => files.forEach((f) => URL.revokeObjectURL(f.url)), []);

  const pick = (e) => {
    const picked = [...e.target.files];
    e.target.value = '';
    setLocal('');
    const all = files.concat(picked.map((file) => ({ file, url: URL.createObjectURL(file), description: '' })));
    const videos = all.filter((f) => f.file.type.startsWith('video/')).length;
    if (videos > 1 || (videos === 1 && all.length > 1)) { setLocal('A tweet has up to 4 images, or 1 video alone.'); picked.length && all.slice(files.length).forEach((f) => URL.revokeObjectURL(f.url)); return; }
    if (all.length > 4) { setLocal('A tweet has up to 4 images.'); all.slice(files.length).forEach((f) => URL.revokeObjectURL(f.url)); return; }
    setFiles(all);
  };
  const drop = (i) => { URL.revokeObjectURL(files[i].url); setFiles(files.filter((_, j) => j !== i)); };
  const describe = (i, description) => setFiles(files.map((f, j) => (j === i ? { ...f, description } : f)));

  const submit = async (e) => {
    e.preventDefault();
    setError(null); setLocal('');
    try {
      let tweet;
      if (files.length) {
        const form = new FormData();
        form.append('content', text);
        for (const f of files) {
          form.append('media', f.file, f.file.name);
          if (f.description.trim()) form.append('description', f.description.trim());
        }
        setProgress(0);
        tweet = await Chirp.postWithMedia(form, setProgress);
      } else {
        setProgress(null);
        tweet = await Chirp.post(text);
      }
      files.forEach((f) => URL.revokeObjectURL(f.url));
      setText(''); setFiles([]);
      onPosted && onPosted(tweet);
    } catch (err) { setError(err); } finally { setProgress(null); }
  };
  const fields = fieldErrors(error);
  const busy = progress !== null;
  const empty = text.trim() === '' && files.length === 0;
  return html`<form class="composer" onSubmit=${submit} aria-label="Compose a tweet">
    <${Avatar} user=${me} />
    <div class="composer-body">
      <label for="compose-text" class="sr-only">What is happening?</label>
      <textarea id="compose-text" placeholder="What is happening?" rows="3" value=${text} autofocus=${autofocus}
        aria-describedby=${fields.content ? 'compose-count compose-error' : 'compose-count'} aria-invalid=${fields.content || left < 0 ? 'true' : 'false'}
        onInput=${(e) => setText(e.target.value)} onKeyDown=${(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) submit(e); }}></textarea>
      ${fields.content && html`<p class="field-error" id="compose-error">${fields.content}</p>`}
      ${files.length > 0 && html`<ul class="previews" aria-label="Attached media">
        ${files.map((f, i) => html`<li key=${f.url}>
          ${f.file.type.startsWith('video/')
            ? html`<video src=${f.url} muted controls preload="metadata" aria-label=${'Video ' + f.file.name}></video>`
            : html`<img src=${f.url} alt=${'Attached image ' + (i + 1)} />`}
          <input type="text" class="alt" maxlength="1500" placeholder="Description (alt text)" aria-label=${'Description of ' + f.file.name}
            value=${f.description} onInput=${(e) => describe(i, e.target.value)} />
          <button type="button" class="remove" onClick=${() => drop(i)} aria-label=${'Remove ' + f.file.name}>✕</button>
        </li>`)}
      </ul>`}
      ${busy && html`<div class="progress"><label for="upload-progress">Uploading… ${Math.round(progress * 100)}%</label>
        <progress id="upload-progress" max="1" value=${progress}></progress></div>`}
      <${Alert} error=${error && !fields.content ? error : null} message=${local} />
      <div class="composer-bar">
        <input type="file" id="compose-files" class="sr-only" accept=${ACCEPT} multiple onChange=${pick}
          disabled=${busy || hasVideo || files.length >= 4} />
        <label for="compose-files" class=${'button secondary file-button' + (busy || hasVideo || files.length >= 4 ? ' disabled' : '')}>Add photos or video</label>
        <span id="compose-count" class=${'counter' + (left < 0 ? ' over' : left <= 20 ? ' near' : '')}><span aria-hidden="true">${left}</span>
          <span class="sr-only">${left < 0 ? `${-left} characters over the limit` : `${left} characters left`}</span></span>
        <button type="submit" class="button" disabled=${busy || empty || left < 0}>Tweet</button>
      </div>
    </div>
  </form>`;
}
