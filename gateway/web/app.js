// The reference front end: every screen of the seed flow on the gateway's public API.
// Plain modern JavaScript, no build step. Tokens live in this tab only (sessionStorage,
// gone when the tab closes); nothing but the language choice is kept longer.
'use strict';

const LANGS = ['kk', 'ru', 'en'];
const store = window.sessionStorage;

const state = {
  lang: pickLang(),
  flow: store.getItem('flow'),
  kind: store.getItem('flow_kind') || 'registration',
  citizenship: store.getItem('citizenship') || 'KZ',
  email: store.getItem('email') || '',
  resendAt: Number(store.getItem('resend_at') || 0),
  access: store.getItem('access'),
  refresh: store.getItem('refresh'),
  login: store.getItem('login') || '',
  // 'capture' on a phone that opened a hand-off link: only the photo steps.
  mode: store.getItem('mode') || '',
  // The pass this tab earned by a proof of work, when its network is busy (a school's lab).
  pass: store.getItem('pow_pass'),
  notice: '',
  docType: '',
};

function pickLang() {
  const saved = window.localStorage.getItem('lang');
  if (LANGS.includes(saved)) return saved;
  for (const l of navigator.languages || []) {
    const short = l.slice(0, 2).toLowerCase();
    if (LANGS.includes(short)) return short;
  }
  return 'ru';
}

function keep(key, value) {
  if (value === null || value === undefined || value === '') store.removeItem(key);
  else store.setItem(key, String(value));
}

function save() {
  keep('flow', state.flow);
  keep('flow_kind', state.kind);
  keep('citizenship', state.citizenship);
  keep('email', state.email);
  keep('resend_at', state.resendAt || '');
  keep('access', state.access);
  keep('refresh', state.refresh);
  keep('login', state.login);
  keep('mode', state.mode);
  keep('pow_pass', state.pass);
}

/** The text `key` in the current language, with `{name}` placeholders filled. */
function t(key, vars) {
  const parts = key.split('.');
  let entry = TEXTS;
  for (const p of parts) entry = entry && entry[p];
  let text = entry ? entry[LANGS.indexOf(state.lang)] : key;
  for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
  return text;
}

// ---------------------------------------------------------------------------------------
// DOM helpers (text is always set as text, never parsed as HTML)

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

let fieldSeq = 0;

/** A labelled input with its own error line. */
function field(name, label, attrs = {}, hint = '') {
  const id = `f-${name}-${++fieldSeq}`;
  const input = h(attrs.tag || 'input', {
    id, name, type: attrs.tag ? undefined : (attrs.type || 'text'),
    'aria-describedby': `${id}-error${hint ? ` ${id}-hint` : ''}`,
    ...Object.fromEntries(Object.entries(attrs).filter(([k]) => k !== 'tag')),
  });
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: id, text: label }),
    input,
    hint ? h('p', { class: 'muted', id: `${id}-hint`, text: hint }) : null,
    h('p', { class: 'error', id: `${id}-error`, 'aria-live': 'polite' }));
}

function alertBox() {
  return h('div', { class: 'alert', role: 'alert' });
}

function actions(...buttons) {
  return h('div', { class: 'actions' }, buttons);
}

function primary(label, attrs = {}) {
  return h('button', { type: 'submit', class: 'primary', ...attrs, text: label });
}

function secondary(label, onclick, attrs = {}) {
  return h('button', { type: 'button', class: 'secondary', onclick, ...attrs, text: label });
}

/** Renders a screen into <main>, names it for tests and moves focus to its heading. */
function show(name, title, ...content) {
  const app = document.getElementById('app');
  app.dataset.screen = name;
  app.replaceChildren(h('h1', { tabindex: '-1', text: title }), ...content.filter((c) => c));
  document.title = `${title} — ${t('brand')}`;
  const heading = app.querySelector('h1');
  if (heading) heading.focus({ preventScroll: false });
}

// ---------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, body, retryAfter) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'http_' + status;
    this.fields = error.fields || {};
    this.body = error;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body, opts = {}) {
  const headers = { 'Accept-Language': state.lang };
  let payload;
  if (body instanceof Blob) {
    headers['Content-Type'] = body.type || 'image/jpeg';
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  // The token this request carries: if it is refused, the refresh below knows whether another
  // request renewed it meanwhile.
  const sent = opts.auth ? state.access : null;
  if (sent) headers.Authorization = `Bearer ${sent}`;
  if (state.pass) headers['X-Pow-Pass'] = state.pass;
  if (opts.solution) headers['X-Proof-Of-Work'] = opts.solution;
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: 'omit', cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, { error: { code: 'network', message: t('error_network') } });
  }
  const pass = response.headers.get('x-pow-pass');
  if (pass) {
    state.pass = pass;
    save();
  }
  if (response.status === 401 && opts.auth && state.refresh && !opts.refreshed) {
    if (await refreshSession(sent)) return api(method, path, body, { ...opts, refreshed: true });
  }
  const type = response.headers.get('content-type') || '';
  let data = null;
  if (type.includes('application/json')) data = await response.json();
  else if (type.startsWith('image/') && response.ok) data = await response.blob();
  if (!response.ok) {
    const retry = Number(response.headers.get('retry-after') || 0);
    if (response.status === 401 && opts.auth) endSession(t('session_over'));
    const challenge = data && data.error && data.error.proof_of_work;
    if (response.status === 429 && challenge && (opts.solved || 0) < 3) {
      // A busy network: solve the gateway's puzzle off the main thread and ask again. The
      // pass a solution earns is sent with every later request, so this happens once.
      state.pass = null;
      const solution = await solve(challenge);
      return api(method, path, body, { ...opts, solution, solved: (opts.solved || 0) + 1 });
    }
    throw new ApiError(response.status, data, retry);
  }
  return data;
}

/** Solves a proof-of-work challenge in a Web Worker (`/assets/pow.js`): the header to send. */
function solve(challenge) {
  return new Promise((resolve, reject) => {
    const worker = new Worker('/assets/pow.js');
    worker.onmessage = (event) => {
      worker.terminate();
      if (event.data.number === null) reject(new ApiError(429, { error: { code: 'proof_of_work_required', message: t('error_network') } }));
      else resolve(btoa(JSON.stringify({
        algorithm: challenge.algorithm, challenge: challenge.challenge, number: event.data.number,
        salt: challenge.salt, signature: challenge.signature,
      })));
    };
    worker.onerror = () => {
      worker.terminate();
      reject(new ApiError(0, { error: { code: 'network', message: t('error_network') } }));
    };
    worker.postMessage(challenge);
  });
}

// The refresh in flight, if any: every request that finds its access token expired waits for
// this one instead of spending the refresh token again (single flight). The gateway forgives a
// second use within a short grace, but a refresh token is meant to be spent once.
let refreshing = null;

/** Renews the session after `sent` (the access token a request carried) was refused. */
function refreshSession(sent) {
  // Another request already renewed it while this one was on the way: just try again.
  if (state.access && state.access !== sent) return Promise.resolve(true);
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const pair = await api('POST', '/v1/sessions/refresh', { refresh_token: state.refresh });
        state.access = pair.access_token;
        state.refresh = pair.refresh_token;
        save();
        return true;
      } catch (e) {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

function endSession(notice) {
  const phone = state.mode === 'capture';
  state.access = null;
  state.refresh = null;
  state.mode = '';
  save();
  state.notice = notice || '';
  route(phone ? 'welcome' : 'login');
  throw new ApiError(401, { error: { code: 'unauthenticated', message: notice } });
}

/** Shows an API error next to the fields it names, or in the form's alert. */
const FIELD_NAMES = { passport_number: 'passport_number', login: 'login', code: 'code' };

function showError(form, error) {
  for (const el of form.querySelectorAll('.error')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const alert = form.querySelector('.alert');
  let placed = false;
  for (const name of Object.keys(error.fields || {})) {
    const wrapper = form.querySelector(`[data-field="${FIELD_NAMES[name] || name}"]`);
    if (!wrapper) continue;
    const line = wrapper.querySelector('.error');
    line.textContent = error.message;
    const input = wrapper.querySelector('input, select, textarea');
    if (input) {
      input.setAttribute('aria-invalid', 'true');
      if (!placed) input.focus();
    }
    placed = true;
  }
  if (!placed && alert) alert.textContent = error.message;
}

/** Runs `work` on submit, with the button disabled and errors shown where they belong. */
function onSubmit(form, work) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await work(new FormData(form));
    } catch (error) {
      if (error instanceof ApiError) showError(form, error);
      else throw error;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------------------------------
// Screens before an account exists

function welcome() {
  show('welcome', t('welcome_title'),
    state.notice ? h('p', { class: 'notice', role: 'status', text: state.notice }) : null,
    h('p', { text: t('welcome_text') }),
    actions(
      h('button', { type: 'button', class: 'primary', onclick: () => route('login'), text: t('login_button') }),
      secondary(t('register_button'), () => route('citizenship'))),
    h('p', {}, h('button', { type: 'button', class: 'link', onclick: () => route('recovery'), text: t('forgot_link') })));
  state.notice = '';
}

async function citizenship() {
  const [countries, terms] = await Promise.all([
    api('GET', '/v1/reference/citizenships'),
    api('GET', '/v1/terms/current'),
  ]);
  const select = field('citizenship', t('citizenship'), { tag: 'select', required: true });
  const input = select.querySelector('select');
  for (const c of countries.items) {
    input.append(h('option', { value: c.code, selected: c.code === state.citizenship, text: c.name }));
  }
  const text = h('div', { class: 'terms', id: 'terms-text', tabindex: '0', hidden: true, text: terms.text });
  const tick = h('input', { type: 'checkbox', id: 'terms-tick', name: 'terms_accepted', disabled: true });
  const read = secondary(t('terms_read'), () => {
    tick.disabled = false;
    read.disabled = true;
    tick.focus();
  }, { id: 'terms-read', hidden: true });
  const open = h('button', {
    type: 'button', class: 'link', 'aria-controls': 'terms-text', 'aria-expanded': 'false',
    onclick: () => {
      text.hidden = false;
      read.hidden = false;
      open.setAttribute('aria-expanded', 'true');
      text.focus();
    },
    text: `${t('terms_link')}: ${terms.title}`,
  });
  const form = h('form', { novalidate: true },
    alertBox(), select,
    h('p', {}, open), text, read,
    h('div', { class: 'field', 'data-field': 'terms_accepted' },
      h('div', { class: 'choice' }, tick, h('label', { for: 'terms-tick', text: t('terms_tick') })),
      h('p', { class: 'error', 'aria-live': 'polite' })),
    actions(primary(t('continue')), secondary(t('back'), () => route('welcome'))));
  onSubmit(form, async () => {
    if (!tick.checked) {
      showError(form, { fields: { terms_accepted: 'required' }, message: t('terms_read_first') });
      return;
    }
    const flow = await api('POST', '/v1/registrations', {
      citizenship: input.value, terms_version: terms.version, terms_sha256: terms.sha256,
      terms_accepted: true,
    });
    Object.assign(state, { flow: flow.flow_id, kind: 'registration', citizenship: input.value });
    save();
    route(flow.next_step);
  });
  show('citizenship', t('citizenship_title'), form);
}

function identifier(usePassport) {
  const passport = usePassport ?? state.citizenship !== 'KZ';
  const input = passport
    ? field('passport_number', t('passport_number'), { autocomplete: 'off', autocapitalize: 'characters', required: true })
    : field('iin', t('iin'), { inputmode: 'numeric', autocomplete: 'off', maxlength: '12', pattern: '[0-9]{12}', required: true }, t('iin_hint'));
  const toggle = state.citizenship === 'KZ' ? null : h('p', {},
    h('button', { type: 'button', class: 'link', onclick: () => identifier(!passport), text: passport ? t('use_iin') : t('use_passport') }));
  const form = h('form', { novalidate: true }, alertBox(), input, toggle,
    actions(primary(t('continue'))));
  onSubmit(form, async (data) => {
    const body = passport
      ? { passport_number: String(data.get('passport_number')).trim() }
      : { iin: String(data.get('iin')).replace(/\s/g, '') };
    state.login = body.iin || body.passport_number;
    save();
    const answer = await api('PUT', `/v1/registrations/${state.flow}/identifier`, body);
    route(answer.next_step);
  });
  show('identifier', t('identifier_title'), form);
}

function email() {
  const form = h('form', { novalidate: true }, alertBox(),
    h('p', { class: 'notice', text: t('email_warning') }),
    field('email', t('email'), { type: 'email', autocomplete: 'email', required: true, value: state.email }),
    actions(primary(t('continue'))));
  onSubmit(form, async (data) => {
    const address = String(data.get('email')).trim();
    const answer = await api('PUT', `/v1/registrations/${state.flow}/email`, { email: address });
    state.email = address;
    state.resendAt = Date.parse(answer.resend_available_at) || 0;
    save();
    route(answer.next_step);
  });
  show('email', t('email_title'), form);
}

/** The code screen, for registration and for recovery. */
function emailCode() {
  const base = state.kind === 'recovery' ? `/v1/recovery/${state.flow}` : `/v1/registrations/${state.flow}`;
  const verifyPath = state.kind === 'recovery' ? `${base}/verify` : `${base}/email/verify`;
  const resendPath = state.kind === 'recovery' ? `${base}/resend` : `${base}/email/resend`;
  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite' });
  const resend = secondary(t('resend'), async () => {
    try {
      const answer = await api('POST', resendPath);
      state.resendAt = Date.parse(answer.resend_available_at) || Date.now() + 60000;
      save();
      status.textContent = t('resent');
      tick();
    } catch (error) {
      if (error.retryAfter) state.resendAt = Date.now() + error.retryAfter * 1000;
      status.textContent = error.message;
      tick();
    }
  }, { id: 'resend' });
  let timer = null;
  function tick() {
    clearTimeout(timer);
    const left = Math.ceil((state.resendAt - Date.now()) / 1000);
    if (left > 0 && resend.isConnected !== false) {
      resend.disabled = true;
      resend.textContent = t('resend_in', { s: left });
      timer = setTimeout(tick, 1000);
    } else {
      resend.disabled = false;
      resend.textContent = t('resend');
    }
  }
  const form = h('form', { novalidate: true }, alertBox(),
    state.email ? h('p', {}, `${t('code_sent')} `, h('strong', { text: state.email })) : (state.notice ? h('p', { class: 'notice', text: state.notice }) : null),
    field('code', t('code'), { inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: '6', pattern: '[0-9]{6}', required: true }),
    h('p', { class: 'muted', text: t('spam_hint') }),
    status,
    actions(primary(t('continue')), resend));
  onSubmit(form, async (data) => {
    const answer = await api('POST', verifyPath, { code: String(data.get('code')).replace(/\s/g, '') });
    route(answer.next_step);
  });
  show('email_code', t('code_title'), form);
  state.notice = '';
  tick();
}

function password() {
  const form = h('form', { novalidate: true }, alertBox(),
    field('password', t('password_new'), { type: 'password', autocomplete: 'new-password', required: true }, t('password_hint')),
    field('password_confirmation', t('password_confirm'), { type: 'password', autocomplete: 'new-password', required: true }),
    actions(primary(t('continue'))));
  onSubmit(form, async (data) => {
    const body = { password: data.get('password'), password_confirmation: data.get('password_confirmation') };
    if (state.kind === 'recovery') {
      await api('POST', `/v1/recovery/${state.flow}/password`, body);
      state.notice = t('recovery_done');
    } else {
      try {
        await api('POST', `/v1/registrations/${state.flow}/password`, body);
      } catch (error) {
        // One answer for a taken IIN or email; the code is spent and the flow is back at
        // the email step. The way forward: recover the account, or try another email.
        if (!(error instanceof ApiError) || error.code !== 'already_registered') throw error;
        state.notice = error.message;
        save();
        route('already_registered');
        return;
      }
      state.notice = t('registered_notice');
    }
    state.flow = null;
    save();
    route('login');
  });
  show('password', t('password_title'), form);
}

/** An account already holds the IIN or the email: recovery, or another email. */
function alreadyRegistered() {
  show('already_registered', t('already_registered_title'),
    h('p', { class: 'notice', role: 'alert', text: state.notice }),
    actions(
      h('button', { type: 'button', class: 'primary', onclick: () => route('recovery'), text: t('forgot_link') }),
      secondary(t('other_email'), () => route('email'))));
  state.notice = '';
}

function login() {
  const form = h('form', { novalidate: true },
    state.notice ? h('p', { class: 'notice', role: 'status', text: state.notice }) : null,
    alertBox(),
    field('login', t('login'), { autocomplete: 'username', required: true, value: state.login }),
    field('password', t('password'), { type: 'password', autocomplete: 'current-password', required: true }),
    actions(primary(t('login_button')), secondary(t('back'), () => route('welcome'))),
    h('p', {}, h('button', { type: 'button', class: 'link', onclick: () => route('recovery'), text: t('forgot_link') })));
  state.notice = '';
  onSubmit(form, async (data) => {
    const session = await api('POST', '/v1/sessions', {
      login: String(data.get('login')).trim(), password: data.get('password'),
    });
    state.access = session.access_token;
    state.refresh = session.refresh_token;
    state.login = String(data.get('login')).trim();
    save();
    route(session.next_step);
  });
  show('login', t('login_title'), form);
}

function recovery() {
  const form = h('form', { novalidate: true }, alertBox(),
    field('login', t('recovery_login'), { autocomplete: 'username', required: true, value: state.login }),
    actions(primary(t('continue')), secondary(t('back'), () => route('welcome'))));
  onSubmit(form, async (data) => {
    const value = String(data.get('login')).trim();
    const flow = await api('POST', '/v1/recovery', value.includes('@') ? { email: value } : { login: value });
    Object.assign(state, { flow: flow.flow_id, kind: 'recovery', email: '', resendAt: Date.now() + 60000 });
    state.notice = t('recovery_sent');
    save();
    route('email_code');
  });
  show('recovery', t('recovery_title'), form);
}

// ---------------------------------------------------------------------------------------
// After login: photos, consent, personal data, completion, cabinet

// The onboarding's steps and the photo steps among them, written by the gateway as it serves
// this file (from the same list its onboarding answers by).
const ONBOARDING = '{{onboarding_steps}}';

function progress(current) {
  // A passport has no back to photograph.
  const steps = ONBOARDING.filter((step) => !(step === 'document_back' && state.docType === 'passport'));
  return h('ol', { class: 'progress', 'aria-label': 'progress' },
    steps.map((step) => h('li', {
      class: step === current ? 'current' : (ONBOARDING.indexOf(step) < ONBOARDING.indexOf(current) ? 'done' : ''),
      'aria-current': step === current ? 'step' : false,
      text: t(`steps.${step}`),
    })));
}

let camera = null;

function stopCamera() {
  if (camera) for (const track of camera.getTracks()) track.stop();
  camera = null;
}

/** A photo step: the camera with its guide, a 3-second countdown, preview, retake or send. */
async function capture(kind) {
  const onboarding = await onboardingNow();
  let documentType = onboarding.document_type || 'id_card';
  state.docType = documentType;
  const isFace = kind === 'face';
  const title = isFace ? t('face_title') : (kind === 'document_front' ? t('front_title') : t('back_title'));
  const video = h('video', { autoplay: true, playsinline: true, muted: true });
  const guide = h('div', { class: `guide ${isFace ? 'oval' : 'card'}`, 'aria-hidden': 'true' });
  const counter = h('div', { class: 'countdown', 'aria-live': 'assertive' });
  const preview = h('img', { alt: '', hidden: true });
  const stage = h('div', { class: `stage${isFace ? ' mirror' : ''}` }, video, preview, guide, counter);
  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite', text: t('camera_starting') });
  const alert = alertBox();
  let photo = null;

  const take = h('button', { type: 'button', class: 'primary', id: 'take', disabled: true, text: t('take_photo') });
  const retake = secondary(t('retake'), () => reset(), { id: 'retake', hidden: true });
  const send = h('button', { type: 'button', class: 'primary', id: 'send', hidden: true, text: kind === 'document_back' ? t('finish_documents') : t('continue') });
  const file = h('input', { type: 'file', id: `file-${kind}`, accept: 'image/jpeg,image/png', class: 'file' });
  file.addEventListener('change', () => {
    if (file.files && file.files[0]) {
      photo = file.files[0];
      showPreview();
    }
  });

  let typeChoice = null;
  if (kind === 'document_front') {
    typeChoice = h('fieldset', {}, h('legend', { text: t('document_type') }),
      ['id_card', 'passport'].map((value) => h('div', { class: 'choice' },
        h('input', {
          type: 'radio', name: 'document_type', id: `type-${value}`, value, checked: documentType === value,
          onchange: () => { documentType = value; state.docType = value; },
        }),
        h('label', { for: `type-${value}`, text: t(value) }))));
  }

  function reset() {
    photo = null;
    guide.classList.remove('placed');
    // A retake watches for the face again, whoever took the last photo.
    if (isFace && !watching && camera) {
      watching = true;
      watch();
    }
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = true;
    video.hidden = false;
    retake.hidden = true;
    send.hidden = true;
    take.hidden = false;
    take.disabled = !camera;
    alert.textContent = '';
    file.value = '';
  }

  function showPreview() {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(photo);
    preview.hidden = false;
    video.hidden = true;
    take.hidden = true;
    retake.hidden = false;
    send.hidden = false;
    alert.textContent = '';
    send.focus();
  }

  /** The camera's picture as a JPEG, `width` wide (the camera's own size when absent). */
  function grab(width, quality) {
    const w = width || video.videoWidth;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = Math.round((video.videoHeight * w) / video.videoWidth);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  }

  // The countdown to the photo: 3 seconds, shown in the oval. One started because the face
  // was placed (`auto`) stops when the face leaves; one started by the button runs out.
  let countdown = null;
  function stopCountdown() {
    if (countdown) clearInterval(countdown.timer);
    countdown = null;
    counter.textContent = '';
  }
  function startCountdown(auto) {
    stopCountdown();
    countdown = { auto, left: 3, timer: null };
    counter.textContent = '3';
    countdown.timer = setInterval(async () => {
      countdown.left -= 1;
      if (countdown.left > 0) {
        counter.textContent = String(countdown.left);
        return;
      }
      stopCountdown();
      photo = await grab(0, 0.92);
      showPreview();
    }, 1000);
  }

  take.addEventListener('click', () => {
    take.disabled = true;
    watching = false; // the applicant took over: no automatic photo
    guide.classList.remove('placed');
    startCountdown(false);
  });

  // The oval that knows: a small frame every half second to biometrics, which judges it with
  // the selfie's own thresholds, until the face is placed; then the oval is green and the
  // photo is taken 3 seconds later, the page itself watching (on a 40 × 30 copy of each
  // frame, four times a second) that the picture stays as it was when the face was placed:
  // a face that leaves stops the countdown and the frames go to biometrics again. Busy
  // checks, a refused frame or no network: the button stays the way.
  let watching = isFace;
  let looking = false;
  async function watch() {
    if (looking) return;
    looking = true;
    try {
      await look();
    } finally {
      looking = false;
    }
  }
  const tiny = document.createElement('canvas');
  tiny.width = 40;
  tiny.height = 30;
  /** The camera's picture as 40 × 30 grey levels. */
  function glance() {
    const g = tiny.getContext('2d', { willReadFrequently: true });
    g.drawImage(video, 0, 0, tiny.width, tiny.height);
    const rgba = g.getImageData(0, 0, tiny.width, tiny.height).data;
    const grey = new Float32Array(tiny.width * tiny.height);
    for (let i = 0; i < grey.length; i += 1) {
      grey[i] = 0.2126 * rgba[4 * i] + 0.7152 * rgba[4 * i + 1] + 0.0722 * rgba[4 * i + 2];
    }
    return grey;
  }
  /** How far two glances differ: the mean difference of their grey levels (0–255). */
  function moved(a, b) {
    let sum = 0;
    for (let i = 0; i < a.length; i += 1) sum += Math.abs(a[i] - b[i]);
    return sum / a.length;
  }
  async function look() {
    while (watching && document.body.contains(stage)) {
      if (camera && video.videoWidth && !photo && countdown && countdown.auto) {
        // The countdown runs: the picture must stay as it was when the face was placed.
        if (moved(countdown.anchor, glance()) > 12) {
          stopCountdown();
          guide.classList.remove('placed');
          status.textContent = t('face_place');
        }
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      if (camera && video.videoWidth && !photo && !countdown) {
        try {
          const anchor = glance();
          const frame = await grab(320, 0.8);
          const answer = await api('POST', '/v1/me/biometrics/face/frame', frame, { auth: true });
          if (!watching || photo || countdown) continue;
          if (answer.placed) {
            guide.classList.add('placed');
            status.textContent = t('face_placed');
            startCountdown(true);
            countdown.anchor = anchor;
          } else {
            guide.classList.remove('placed');
            status.textContent = answer.message || t('face_place');
          }
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          watching = false;
          guide.classList.remove('placed');
          if (countdown && countdown.auto) stopCountdown();
          status.textContent = t('face_by_button');
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  send.addEventListener('click', async () => {
    send.disabled = true;
    retake.disabled = true;
    status.textContent = t('uploading');
    const path = `/v1/me/biometrics/${kind.replace('_', '-')}`
      + (kind === 'face' ? '' : `?document_type=${encodeURIComponent(documentType)}`);
    try {
      for (;;) {
        try {
          const answer = await api('PUT', path, photo, { auth: true });
          status.textContent = t('photo_accepted');
          stopCamera();
          route(answer.next_step);
          return;
        } catch (error) {
          // A busy suite asks to come back shortly: wait as told, then send again.
          if (error.code === 'overloaded' && error.retryAfter) {
            status.textContent = t('retry_in', { s: error.retryAfter });
            await new Promise((r) => setTimeout(r, error.retryAfter * 1000));
            continue;
          }
          throw error;
        }
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status.textContent = '';
      alert.textContent = error.message;
      retake.focus();
    } finally {
      send.disabled = false;
      retake.disabled = false;
    }
  });

  const toPhone = state.mode === 'capture' ? null
    : h('p', {}, h('button', {
      type: 'button', class: 'link', id: 'handoff', text: t('handoff_offer'),
      // A refusal (the suite busy, the session over) is said where the photo errors are.
      onclick: () => handoff(kind).catch((error) => {
        if (!(error instanceof ApiError)) throw error;
        alert.textContent = error.message;
      }),
    }));
  // The photo whose zone was not read, or expired, or that a person asks again: say why.
  const check = onboarding.document_check;
  const zoneStep = documentType === 'passport' ? 'document_front' : 'document_back';
  if (kind === zoneStep && check && ['retake', 'expired'].includes(check.status)) {
    alert.textContent = documentCheckText(check);
  }
  show(kind, title, progress(kind),
    h('p', { text: isFace ? t('face_text') : t('document_text') }),
    typeChoice, stage, status, alert,
    actions(take, retake, send),
    h('div', { class: 'field' }, h('label', { for: file.id, text: t('upload_file') }), file),
    toPhone);

  try {
    stopCamera();
    camera = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: isFace ? 'user' : 'environment' }, audio: false,
    });
    video.srcObject = camera;
    await video.play().catch(() => {});
    status.textContent = isFace ? t('face_place') : '';
    // The document's frame is a guide; the oval turns green only when the face is placed.
    if (!isFace) guide.classList.add('ready');
    take.disabled = false;
  } catch (e) {
    status.textContent = t('camera_denied');
    return;
  }
  if (isFace) watch();
}

async function consent() {
  const text = await api('GET', '/v1/terms/biometric-consent');
  const tick = h('input', { type: 'checkbox', id: 'consent-tick', name: 'accepted' });
  const form = h('form', { novalidate: true }, alertBox(),
    h('h2', { text: text.title }),
    h('div', { class: 'terms', tabindex: '0', text: text.text }),
    h('div', { class: 'field', 'data-field': 'accepted' },
      h('div', { class: 'choice' }, tick, h('label', { for: 'consent-tick', text: t('consent_tick') })),
      h('p', { class: 'error', 'aria-live': 'polite' })),
    actions(primary(t('continue'))));
  onSubmit(form, async () => {
    const answer = await api('POST', '/v1/me/biometrics/consent',
      { consent_version: text.version, consent_sha256: text.sha256, accepted: tick.checked },
      { auth: true });
    route(answer.next_step);
  });
  show('consent', t('consent_title'), progress('consent'), form);
}

async function profileNow() {
  return api('GET', '/v1/me/profile', undefined, { auth: true });
}

/** Where the registration stands; remembers the document type, so the progress leaves out
 * the back of a passport on every screen, a resumed one too. */
async function onboardingNow() {
  const onboarding = await api('GET', '/v1/me/onboarding', undefined, { auth: true });
  if (onboarding.document_type) state.docType = onboarding.document_type;
  return onboarding;
}

async function nextAfterProfile() {
  const onboarding = await onboardingNow();
  route(onboarding.next_step);
}

async function name() {
  const p = await profileNow();
  const form = h('form', { novalidate: true }, alertBox(),
    field('surname', t('surname'), { autocomplete: 'family-name', required: true, value: p.surname || '' }),
    field('given_name', t('given_name'), { autocomplete: 'given-name', required: true, value: p.given_name || '' }),
    field('patronymic', t('patronymic'), { autocomplete: 'additional-name', value: p.patronymic || '' }),
    actions(primary(t('continue'))));
  onSubmit(form, async (data) => {
    const body = { surname: data.get('surname'), given_name: data.get('given_name') };
    if (String(data.get('patronymic')).trim()) body.patronymic = data.get('patronymic');
    await api('PUT', '/v1/me/profile/name', body, { auth: true });
    await nextAfterProfile();
  });
  show('name', t('name_title'), progress('name'), form);
}

/** dd.mm.yyyy ⇄ yyyy-mm-dd */
function toIsoDate(text) {
  const m = /^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*$/.exec(text);
  return m ? `${m[3]}-${m[2].padStart(2, '0')}-${m[1].padStart(2, '0')}` : text.trim();
}

function fromIsoDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
  return m ? `${m[3]}.${m[2]}.${m[1]}` : '';
}

/** Formats a Kazakhstan mobile number as it is typed: +7 (701) 777-77-77. */
function formatPhone(text) {
  let digits = text.replace(/\D/g, '');
  if (digits.startsWith('8')) digits = '7' + digits.slice(1);
  if (!digits.startsWith('7') || !text.trim().match(/^(\+?7|8)/)) return text;
  const d = digits.slice(1, 11);
  let out = '+7';
  if (d.length > 0) out += ` (${d.slice(0, 3)}`;
  if (d.length >= 3) out += ')';
  if (d.length > 3) out += ` ${d.slice(3, 6)}`;
  if (d.length > 6) out += `-${d.slice(6, 8)}`;
  if (d.length > 8) out += `-${d.slice(8, 10)}`;
  return out;
}

async function details() {
  const [p, regions] = await Promise.all([profileNow(), api('GET', '/v1/reference/regions')]);
  const suggested = p.suggested || {};
  const sex = p.sex || suggested.sex || '';
  const sexes = h('fieldset', { 'data-field': 'sex' }, h('legend', { text: t('sex') }),
    ['male', 'female'].map((value) => h('div', { class: 'choice' },
      h('input', { type: 'radio', name: 'sex', id: `sex-${value}`, value, checked: sex === value }),
      h('label', { for: `sex-${value}`, text: t(value) }))),
    h('p', { class: 'error', 'aria-live': 'polite' }));
  const region = field('region_code', t('region'), { tag: 'select', required: true });
  const select = region.querySelector('select');
  select.append(h('option', { value: '', text: t('choose') }));
  for (const r of regions.items) select.append(h('option', { value: r.code, selected: r.code === p.region_code, text: r.name }));
  const phone = field('mobile_phone', t('mobile_phone'), {
    type: 'tel', autocomplete: 'tel', inputmode: 'tel', placeholder: '+7 (701) 777-77-77', required: true,
    value: p.mobile_phone ? formatPhone(p.mobile_phone) : '',
  });
  const phoneInput = phone.querySelector('input');
  phoneInput.addEventListener('input', () => {
    const formatted = formatPhone(phoneInput.value);
    if (formatted !== phoneInput.value) phoneInput.value = formatted;
  });
  const form = h('form', { novalidate: true }, alertBox(), sexes,
    field('birth_date', t('birth_date'), { inputmode: 'numeric', autocomplete: 'bday', placeholder: 'dd.mm.yyyy', required: true,
      value: fromIsoDate(p.birth_date || suggested.birth_date) }),
    region, phone,
    actions(primary(t('continue'))));
  onSubmit(form, async (data) => {
    await api('PUT', '/v1/me/profile/details', {
      sex: data.get('sex') || '',
      birth_date: toIsoDate(String(data.get('birth_date'))),
      region_code: data.get('region_code'),
      mobile_phone: data.get('mobile_phone'),
    }, { auth: true });
    await nextAfterProfile();
  });
  show('details', t('details_title'), progress('details'), form);
}

async function education() {
  const [p, contingents] = await Promise.all([profileNow(), api('GET', '/v1/reference/contingents')]);
  const contingent = field('contingent_code', t('contingent'), { tag: 'select', required: true });
  const select = contingent.querySelector('select');
  select.append(h('option', { value: '', text: t('choose') }));
  for (const c of contingents.items) {
    select.append(h('option', { value: c.code, 'data-kind': c.institution_kind, selected: c.code === p.contingent_code, text: c.name }));
  }
  // The institutions of the chosen category: the applicant's region first, then the others,
  // a page at a time; the search narrows a long list.
  let chosen = p.institution ? p.institution.id : '';
  const query = h('input', {
    type: 'search', id: 'institution-query', autocomplete: 'off', 'aria-controls': 'institutions',
    placeholder: t('institution_hint'),
  });
  const list = h('div', { class: 'choices', id: 'institutions', role: 'radiogroup', 'aria-labelledby': 'institution-legend' });
  const more = secondary(t('show_more'), () => load(true), { id: 'institutions-more', hidden: true });
  const place = h('fieldset', { class: 'field', 'data-field': 'institution_id', hidden: true },
    h('legend', { id: 'institution-legend', text: t('institution') }),
    h('label', { class: 'visually-hidden', for: 'institution-query', text: t('institution_search') }),
    query, list, more,
    h('p', { class: 'error', 'aria-live': 'polite' }));
  let seq = 0;
  let token = '';
  let debounce = null;
  let lastGroup = null;
  function option(item) {
    const mine = p.region_code && item.region_code === p.region_code;
    const group = mine ? 'mine' : 'other';
    const rows = [];
    if (p.region_code && group !== lastGroup) {
      rows.push(h('p', { class: 'group', text: t(mine ? 'institutions_region' : 'institutions_other') }));
    }
    lastGroup = group;
    const radio = h('input', {
      type: 'radio', name: 'institution_id', value: item.id, id: `inst-${item.id}`, checked: item.id === chosen,
    });
    radio.addEventListener('change', () => { chosen = item.id; });
    rows.push(h('div', { class: 'choice' }, radio, h('label', { for: radio.id, text: item.name })));
    return rows;
  }
  async function load(next) {
    const mine = ++seq;
    const kind = select.selectedOptions[0] ? select.selectedOptions[0].dataset.kind || '' : '';
    place.hidden = !kind;
    if (!kind) return;
    const params = new URLSearchParams({ kind, query: query.value.trim(), page_size: '50' });
    if (p.region_code) params.set('prefer_region_code', p.region_code);
    if (next && token) params.set('page_token', token);
    list.setAttribute('aria-busy', 'true');
    try {
      const found = await api('GET', `/v1/reference/institutions?${params}`);
      if (mine !== seq) return; // a later choice or keystroke already asked
      if (!next) { list.replaceChildren(); lastGroup = null; }
      list.append(...found.items.flatMap(option));
      if (!list.querySelector('input')) list.append(h('p', { text: t('institution_none') }));
      token = found.next_page_token || '';
      more.hidden = !token;
    } finally {
      if (mine === seq) list.removeAttribute('aria-busy');
    }
  }
  query.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => load(false), 200);
  });
  // Enter in the search runs it; it does not submit the form.
  query.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') { event.preventDefault(); clearTimeout(debounce); load(false); }
  });
  select.addEventListener('change', () => {
    if (!p.institution || select.value !== p.contingent_code) chosen = '';
    query.value = '';
    load(false);
  });
  const form = h('form', { novalidate: true }, alertBox(), contingent, place, actions(primary(t('continue'))));
  onSubmit(form, async () => {
    await api('PUT', '/v1/me/profile/education', {
      contingent_code: select.value, institution_id: chosen,
    }, { auth: true });
    await nextAfterProfile();
  });
  show('education', t('education_title'), progress('education'), form);
  await load(false);
}

function summary(me) {
  const p = me.profile || {};
  const rows = [
    [t('iin'), me.account.iin || me.account.passport_number],
    [t('email'), me.account.email],
    [t('surname'), p.surname], [t('given_name'), p.given_name], [t('patronymic'), p.patronymic],
    [t('birth_date'), fromIsoDate(p.birth_date)], [t('mobile_phone'), p.mobile_phone ? formatPhone(p.mobile_phone) : null],
    [t('institution'), me.education && me.education.institution ? me.education.institution.name : null],
  ];
  return h('dl', { class: 'summary' }, rows.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v || t('none') })]));
}

/** What the document check asks of the applicant (its message and the reviewer's reason). */
function documentCheckText(check) {
  return check.reason ? `${check.message} ${check.reason}` : check.message;
}

async function complete() {
  const [me, onboarding] = await Promise.all([
    api('GET', '/v1/me', undefined, { auth: true }),
    onboardingNow(),
  ]);
  const check = onboarding.document_check;
  const notice = h('p', {
    class: 'notice', id: 'document-check', role: 'status', 'aria-live': 'polite',
    hidden: !check || check.status === 'verified',
    text: check && check.status !== 'verified' ? documentCheckText(check) : '',
  });
  const form = h('form', { novalidate: true }, alertBox(),
    h('p', { text: t('complete_text') }), summary(me), notice,
    actions(primary(t('complete_button'))));
  const app = document.getElementById('app');
  onSubmit(form, async () => {
    for (;;) {
      try {
        await api('POST', '/v1/me/registration/complete', undefined, { auth: true });
        route('done');
        return;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const held = error.body.document_check;
        if (held) {
          notice.textContent = documentCheckText(held);
          notice.hidden = false;
        }
        // The document is read a few seconds after its photo: wait here, then try again.
        if (error.code === 'document_check_pending' && app.contains(form)) {
          await new Promise((r) => setTimeout(r, 2000));
          continue;
        }
        // The check asks for the photo again: that step, where its message is shown.
        if (held && (error.body.missing || []).length) {
          route(error.body.missing[0]);
          return;
        }
        throw error;
      }
    }
  });
  show('complete', t('complete_title'), progress('complete'), form);
}

/** A moment as the applicant's device shows it: «3 декабря 2026 г., 14:05». */
function moment(iso) {
  if (!iso) return '';
  const locale = { kk: 'kk-KZ', ru: 'ru-RU', en: 'en-GB' }[state.lang];
  return new Date(iso).toLocaleString(locale, { dateStyle: 'long', timeStyle: 'short' });
}

/** A small preview of the applicant's own photo, read through the audited path. */
function photoFigure(photo, passport) {
  const caption = photo.kind === 'document_front' && passport ? t('photo_passport') : t(`photo_${photo.kind}`);
  const img = h('img', { class: 'thumb', alt: caption, width: '160', height: '120' });
  api('GET', photo.preview, undefined, { auth: true })
    .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); })
    .catch(() => { img.alt = `${caption}: ${t('photo_unavailable')}`; });
  return h('figure', { class: 'photo', 'data-kind': photo.kind }, img,
    h('figcaption', {}, caption, h('br'), h('span', { class: 'muted', text: moment(photo.captured_at) })));
}

async function cabinet() {
  const me = await api('GET', '/v1/me', undefined, { auth: true });
  if (me.next_step && me.next_step !== 'done') {
    route(me.next_step);
    return;
  }
  const a = me.account;
  const p = me.profile || {};
  const e = me.education || {};
  const v = me.verification || {};
  const passport = Boolean(a.passport_number);
  const list = (rows) => h('dl', { class: 'summary' },
    rows.flatMap(([k, value]) => [h('dt', { text: k }), h('dd', { text: value || t('none') })]));
  const section = (id, title, ...content) => h('section', { class: 'part', 'aria-labelledby': id },
    h('h2', { id, text: title }), ...content);
  const status = {
    registered: `${t('registered')}: ${moment(a.registered_at)}`,
    blocked: t('status_blocked'),
  }[a.status] || t('status_in_progress');
  const consents = [
    [t('terms_accepted_on'), a.terms && a.terms.accepted_at
      ? `${moment(a.terms.accepted_at)} (${t('version')} ${a.terms.version})` : ''],
    [t('consent_accepted_on'), v.consent
      ? `${moment(v.consent.accepted_at)} (${t('version')} ${v.consent.version})` : ''],
  ];
  const logout = secondary(t('logout'), async () => {
    try { await api('DELETE', '/v1/sessions/current', undefined, { auth: true }); } catch (err) { /* gone anyway */ }
    state.access = null;
    state.refresh = null;
    save();
    route('welcome');
  }, { id: 'logout' });
  show('cabinet', t('cabinet_title'),
    h('p', { class: 'notice', role: 'status', id: 'registration-status' },
      h('strong', { text: `${t('status')}: ` }), status),
    section('next-title', t('next_title'), h('p', { id: 'next-steps', text: t(a.status === 'blocked' ? 'next_blocked' : 'next_registered') })),
    section('account-title', t('account_title'), list([
      [passport ? t('passport_number') : t('iin'), a.iin || a.passport_number],
      [t('citizenship'), a.citizenship_name],
      [t('email'), a.email],
    ])),
    section('person-title', t('person_title'), list([
      [t('surname'), p.surname], [t('given_name'), p.given_name], [t('patronymic'), p.patronymic],
      [t('sex'), p.sex ? t(p.sex) : ''],
      [t('born'), fromIsoDate(p.birth_date)],
      [t('region'), p.region_name],
      [t('mobile_phone'), p.mobile_phone ? formatPhone(p.mobile_phone) : ''],
    ])),
    section('education-title', t('education_title'), list([
      [t('contingent'), e.contingent_name],
      [t('institution'), e.institution ? e.institution.name : ''],
    ])),
    section('photos-title', t('photos'),
      h('div', { class: 'photos' }, (v.photos || []).map((photo) => photoFigure(photo, passport)))),
    section('consents-title', t('consents_title'), list(consents)),
    actions(logout));
}

// ---------------------------------------------------------------------------------------
// Continuing on a phone

/** The desktop's side: a QR code of a single-use link, then follow the phone's progress. */
async function handoff(from) {
  const link = await api('POST', '/v1/me/handoff', undefined, { auth: true });
  stopCamera();
  const status = h('p', { class: 'muted', role: 'status', 'aria-live': 'polite', text: t('handoff_waiting') });
  show('handoff', t('handoff_offer'),
    h('p', { text: t('handoff_text') }),
    h('img', { class: 'qr', id: 'handoff-qr', src: link.qr, alt: link.url }),
    field('handoff_link', t('handoff_link'), { readonly: true, value: link.url }),
    status,
    actions(
      secondary(t('handoff_new'), () => handoff(from)),
      secondary(t('handoff_here'), () => route(from))));
  const expires = Date.parse(link.expires_at) || Date.now() + 300000;
  const app = document.getElementById('app');
  let started = false;
  const poll = async () => {
    if (!app.contains(status)) return; // this screen was left
    try {
      const onboarding = await onboardingNow();
      if (!PHOTO_STEPS.includes(onboarding.next_step)) {
        route(onboarding.next_step);
        return;
      }
      const done = onboarding.steps.filter((s) => PHOTO_STEPS.includes(s.step) && s.done).length;
      started = started || done > 0;
      const all = onboarding.document_type === 'passport' ? 2 : 3;
      status.textContent = !started && Date.now() > expires
        ? t('handoff_link_expired') : `${t('handoff_waiting')} ${done}/${all}`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
    }
    setTimeout(poll, 2000);
  };
  setTimeout(poll, 2000);
}

/** The phone's side: trade the link for a capture token, once. */
async function redeemHandoff(id) {
  try {
    const answer = await api('POST', '/v1/handoff/redeem', { handoff: id });
    Object.assign(state, { access: answer.capture_token, refresh: null, mode: 'capture', flow: null });
    save();
    route(answer.next_step);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    show('handoff_refused', t('handoff_offer'),
      h('div', { class: 'alert', role: 'alert', text: error.message }),
      actions(secondary(t('back'), () => route('welcome'))));
  }
}

/** The phone after its photos: the rest happens on the computer. */
function phoneDone() {
  show('handoff_done', t('handoff_offer'), h('p', { class: 'notice', role: 'status', text: t('handoff_phone_done') }));
}

// ---------------------------------------------------------------------------------------
// Routing by the API's next_step

const SCREENS = {
  welcome, citizenship, identifier: () => identifier(), email, email_code: emailCode, password, login, recovery,
  already_registered: alreadyRegistered,
  face: () => capture('face'), document_front: () => capture('document_front'), document_back: () => capture('document_back'),
  consent, name, details, education, complete, done: cabinet, cabinet,
  // Re-rendered (a language switch): the hand-off screen goes back to the photo step it
  // came from, where a new link is one press away.
  handoff: () => resume(), handoff_done: () => phoneDone(), handoff_refused: welcome,
};

const PHOTO_STEPS = '{{photo_steps}}';

async function route(step) {
  if (!PHOTO_STEPS.includes(step)) stopCamera();
  const screen = state.mode === 'capture' && !PHOTO_STEPS.includes(step) ? phoneDone : (SCREENS[step] || welcome);
  try {
    await screen();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401) return; // endSession already moved to the login screen
    if (error.code === 'flow_expired' || error.code === 'flow_not_found') {
      state.flow = null;
      save();
      state.notice = error.message;
      welcome();
      return;
    }
    const app = document.getElementById('app');
    app.dataset.screen = 'error';
    app.replaceChildren(h('div', { class: 'alert', role: 'alert', text: error.message }),
      actions(secondary(t('back'), () => route(step))));
  }
}

async function resume() {
  const handoffId = new URLSearchParams(window.location.hash.slice(1)).get('handoff');
  if (handoffId) {
    // The link's id leaves the address bar and the history at once.
    window.history.replaceState(null, '', window.location.pathname);
    return redeemHandoff(handoffId);
  }
  if (state.access) {
    try {
      const onboarding = await onboardingNow();
      return route(onboarding.next_step);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      // A 401 already moved to the login screen; anything else starts over with a notice.
      if (e.status === 401) return undefined;
      state.notice = e.message;
      return route('welcome');
    }
  }
  if (state.flow) {
    const path = state.kind === 'recovery' ? null : `/v1/registrations/${state.flow}`;
    if (path) {
      try {
        const flow = await api('GET', path);
        return route(flow.next_step);
      } catch (e) {
        state.flow = null;
        save();
      }
    }
  }
  return route('welcome');
}

function applyLang() {
  document.documentElement.lang = state.lang;
  document.getElementById('brand').textContent = t('brand');
  for (const button of document.querySelectorAll('.lang')) {
    button.setAttribute('aria-pressed', String(button.dataset.lang === state.lang));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  for (const button of document.querySelectorAll('.lang')) {
    button.addEventListener('click', () => {
      state.lang = button.dataset.lang;
      window.localStorage.setItem('lang', state.lang);
      applyLang();
      const current = document.getElementById('app').dataset.screen;
      route(current === 'loading' || current === 'error' ? 'welcome' : current);
    });
  }
  applyLang();
  resume();
});

// A hand-off link opened in a tab that already shows these pages changes only the fragment.
window.addEventListener('hashchange', () => {
  if (window.location.hash.includes('handoff=')) resume();
});
