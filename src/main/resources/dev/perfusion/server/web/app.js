// The perfusion web app: plain JavaScript over the REST API (/api) and its server-sent events (/api/events).
'use strict';

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  concepts: [],
  jobs: new Map(),          // id -> the job as the server last told it
  generateJob: null,        // the generation whose pictures the Generate view shows
  lastGenerate: null,       // its request, to draw again when a slider is released
  trainJob: null,           // the training run the Train view follows
};

// ---- talking to the server ----

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) { options.body = JSON.stringify(body); options.headers['Content-Type'] = 'application/json'; }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!response.ok) {
    const error = new Error((data && data.error) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

function listen() {
  const events = new EventSource('/api/events');
  events.addEventListener('open', () => { $('connection').textContent = 'live'; $('connection').className = 'connection live'; });
  events.addEventListener('error', () => { $('connection').textContent = 'reconnecting…'; $('connection').className = 'connection'; });
  events.addEventListener('job', (e) => jobChanged(JSON.parse(e.data)));
}

function jobChanged(job) {
  const before = state.jobs.get(job.id);
  state.jobs.set(job.id, job);
  // a reloaded page follows the newest generation and training run
  if (job.kind === 'generate' && (!state.generateJob || job.id >= state.generateJob)) {
    state.generateJob = job.id;
    if (!state.lastGenerate) state.lastGenerate = job.request;
  }
  if (job.kind === 'train' && (!state.trainJob || job.id >= state.trainJob)) state.trainJob = job.id;
  if (job.kind === 'train' && job.state === 'done' && (!before || before.state !== 'done')) loadConcepts();
  renderGenerate();
  renderTrain();
  renderJobs();
}

// ---- views ----

function showView(name) {
  document.querySelectorAll('.tab').forEach((t) => t.classList.toggle('active', t.dataset.view === name));
  document.querySelectorAll('.view').forEach((v) => v.classList.toggle('active', v.id === 'view-' + name));
}

function el(tag, attributes, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.substring(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function describeProgress(job) {
  const p = job.progress;
  if (job.state === 'failed') return 'failed: ' + job.error;
  if (job.state !== 'running' || !p.total) return job.state;
  let s = `${p.task} ${p.done}/${p.total}`;
  if (p.detail) s += ` (${p.detail})`;
  if (p.stepsPerSecond) s += `, ${p.stepsPerSecond.toFixed(2)} steps/s`;
  if (p.secondsLeft !== null && p.secondsLeft !== undefined) s += `, ${formatSeconds(p.secondsLeft)} left`;
  return s;
}

function formatSeconds(s) {
  if (s < 60) return s.toFixed(1) + ' s';
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - 60 * m)} s`;
}

function renderGenerate() {
  const job = state.jobs.get(state.generateJob);
  if (!job) return;
  $('generate-status').textContent = job.title + ': ' + describeProgress(job);
  $('generate-status').dataset.state = job.state;
  const images = $('images');
  const shown = job.images.map((i) => i.url).join(' ');
  if (images.dataset.shown === shown && images.dataset.job === job.id) return;
  if (job.images.length === 0 && job.state !== 'done') return; // keep the pictures before until new ones come
  images.dataset.shown = shown;
  images.dataset.job = job.id;
  images.replaceChildren(...job.images.map((image) => {
    const name = image.url.split('/').pop();
    return el('figure', { class: image.width > 256 || image.url.endsWith('beta-sweep.png') ? 'wide' : '' },
      el('img', { src: image.url, alt: 'seed ' + image.seed, class: 'result-image', 'data-seed': image.seed }),
      el('figcaption', {},
        el('pre', { class: 'parameters' }, image.parameters),
        el('a', { href: image.url, download: job.id + '-' + name, class: 'download' }, 'download PNG')));
  }));
}

// sha256-f32-sampled4096:cfdf937e1041... -> cfdf937e1041
function shortHash(hash) {
  return hash.replace(/^.*:/, '').substring(0, 12);
}

function renderConcepts() {
  // the library table
  const body = $('concepts-table').querySelector('tbody');
  body.replaceChildren(...state.concepts.map((c) => {
    const s = c.summary;
    const del = el('button', { type: 'button', class: 'delete-concept', 'data-name': c.name, onclick: () => deleteConcept(c.name) }, 'Delete');
    if (!s) return el('tr', { 'data-name': c.name }, el('td', {}, c.name), el('td', { colspan: 7, class: 'error' }, c.error), el('td', {}, del));
    const training = el('details', {}, el('summary', {}, s.training.steps ? s.training.steps + ' steps' : 'settings'),
      el('pre', { class: 'mono' }, Object.entries(s.training).map(([k, v]) => `${k}: ${v}`).join('\n')));
    return el('tr', { 'data-name': c.name, class: 'concept-row' },
      el('td', { class: 'name' }, c.name), el('td', { class: 'mono name' }, s.word), el('td', {}, s.supercategory), el('td', {}, s.edit),
      el('td', {}, `beta ${s.beta}, tau ${s.tau}`),
      el('td', { class: 'mono', title: `base model ${s.baseModelHash}\ntext encoder ${s.textEncoderHash}` }, shortHash(s.baseModelHash)),
      el('td', {}, `${(s.bytes / 1024).toFixed(1)} KB, ${s.layers} layers, ${s.storedFloats.toLocaleString()} floats`),
      el('td', {}, training), el('td', {}, del));
  }));
  // the picks of the Generate view, keeping what was chosen
  const picks = $('concept-picks');
  const kept = {};
  picks.querySelectorAll('.concept-pick').forEach((p) => {
    kept[p.dataset.name] = { use: p.querySelector('.concept-use').checked, beta: p.querySelector('.beta').value, tau: p.querySelector('.tau').value };
  });
  const usable = state.concepts.filter((c) => c.summary);
  if (usable.length === 0) { picks.replaceChildren(el('p', { class: 'hint' }, 'No concepts in the library.')); return; }
  picks.replaceChildren(...usable.map((c) => {
    const s = c.summary, k = kept[c.name] || { use: false, beta: s.beta, tau: s.tau };
    const value = el('span', { class: 'beta-value' }, Number(k.beta).toFixed(2));
    const gate = el('div', { class: 'gate', hidden: !k.use },
      el('label', { class: 'check' }, 'beta',
        el('input', { type: 'range', class: 'beta', id: 'beta-' + c.name, min: 0.05, max: 0.95, step: 0.05, value: k.beta,
          oninput: (e) => { value.textContent = Number(e.target.value).toFixed(2); },
          onchange: () => redrawWithSameSeed() }), value),
      el('label', { class: 'check' }, 'tau',
        el('input', { type: 'number', class: 'tau', id: 'tau-' + c.name, min: 0.01, max: 1, step: 0.01, value: k.tau, onchange: () => redrawWithSameSeed() })));
    const use = el('input', { type: 'checkbox', class: 'concept-use', id: 'use-' + c.name, 'data-name': c.name,
      onchange: (e) => { gate.hidden = !e.target.checked; } });
    use.checked = k.use;
    return el('div', { class: 'concept-pick', 'data-name': c.name },
      el('label', { class: 'check' }, use, el('b', {}, c.name), ` — "${s.word}", a kind of ${s.supercategory}`), gate);
  }));
}

function renderTrain() {
  const job = state.jobs.get(state.trainJob);
  if (!job) return;
  $('train-title').textContent = '— ' + job.title;
  $('train-status').textContent = describeProgress(job);
  $('train-status').dataset.state = job.state;
  const p = job.progress;
  const training = p.task && p.task.startsWith('training');
  $('train-progress').max = training && p.total ? p.total : 1;
  $('train-progress').value = training ? p.done : (job.state === 'done' ? 1 : 0);
  $('train-rate').textContent = '';
  if (job.state === 'done' && job.result) {
    $('train-rate').textContent = `done in ${formatSeconds(job.result.seconds)}; concept '${job.result.concept.name}' is in the library`;
    const check = job.result.gateCheck;
    if (check && check.opens) $('train-rate').textContent += '. ' + check.message.replace('gate check: the gate', 'Its gate');
  }
  $('train-cancel').disabled = job.state !== 'running' && job.state !== 'queued';
  drawLoss(job.loss);
  const samples = $('samples');
  if (samples.childElementCount !== job.samples.length) {
    samples.replaceChildren(...job.samples.map((url) => el('figure', {},
      el('img', { src: url, class: 'sample-image', alt: 'sample' }), el('figcaption', {}, url.split('/').pop().replace('.png', '')))));
  }
}

function drawLoss(points) {
  const canvas = $('loss-chart'), g = canvas.getContext('2d');
  const w = canvas.width, h = canvas.height, pad = 28;
  g.clearRect(0, 0, w, h);
  g.fillStyle = '#6b6b6b';
  g.font = '11px sans-serif';
  g.fillText('loss', 4, 12);
  if (!points || points.length === 0) return;
  const steps = points.map((p) => p[0]), values = points.map((p) => p[1]);
  const x0 = Math.min(...steps), x1 = Math.max(...steps, x0 + 1);
  const y0 = Math.min(...values), y1 = Math.max(...values, y0 + 1e-6);
  const x = (s) => pad + (w - 2 * pad) * (s - x0) / (x1 - x0);
  const y = (v) => h - pad + (2 * pad - h) * (v - y0) / (y1 - y0);
  g.fillText(y1.toFixed(3), 4, pad);
  g.fillText(y0.toFixed(3), 4, h - pad);
  g.fillText('step ' + x1, w - pad - 40, h - 6);
  g.strokeStyle = '#ccd';
  g.strokeRect(pad, pad / 2, w - 2 * pad, h - 1.5 * pad);
  g.strokeStyle = '#3b5bdb';
  g.beginPath();
  points.forEach((p, i) => (i === 0 ? g.moveTo(x(p[0]), y(p[1])) : g.lineTo(x(p[0]), y(p[1]))));
  g.stroke();
}

// Rows are kept per job and updated in place: a table rebuilt on every progress event would swap the Cancel button
// under the pointer of someone clicking it (and under a test's reference to it).
function renderJobs() {
  const jobs = [...state.jobs.values()].sort((a, b) => (a.id < b.id ? 1 : -1));
  const active = jobs.filter((j) => j.state === 'queued' || j.state === 'running').length;
  $('jobs-badge').textContent = active ? String(active) : '';
  const body = $('jobs-table').querySelector('tbody');
  const existing = new Map([...body.children].map((r) => [r.dataset.id, r]));
  const rows = jobs.map((j) => {
    const row = existing.get(j.id) || el('tr', { class: 'job-row', 'data-id': j.id },
      el('td', { class: 'mono' }, j.id), el('td', {}, j.kind), el('td', {}, j.title), el('td', {}), el('td', {}), el('td', {}));
    row.dataset.state = j.state;
    const [, , , stateCell, progressCell, actionCell] = row.children;
    stateCell.className = 'state-' + j.state;
    stateCell.textContent = j.state;
    progressCell.className = j.state === 'failed' ? 'error' : '';
    progressCell.textContent = describeProgress(j) + (j.messages.length ? ' — ' + j.messages.join('; ') : '');
    const cancellable = j.state === 'queued' || j.state === 'running';
    const button = actionCell.querySelector('button.cancel-job');
    if (cancellable && !button) {
      actionCell.append(el('button', { type: 'button', class: 'cancel-job', onclick: () => api('POST', `/api/jobs/${j.id}/cancel`).catch(() => {}) }, 'Cancel'));
    } else if (!cancellable && button) {
      button.remove();
    }
    return row;
  });
  const inOrder = rows.length === body.children.length && rows.every((r, i) => body.children[i] === r);
  if (!inOrder) body.replaceChildren(...rows);
}

// ---- actions ----

function generateRequest() {
  const concepts = [...document.querySelectorAll('.concept-pick')].filter((p) => p.querySelector('.concept-use').checked)
    .map((p) => ({ name: p.dataset.name, beta: Number(p.querySelector('.beta').value), tau: Number(p.querySelector('.tau').value) }));
  return {
    prompt: $('prompt').value, negativePrompt: $('negative').value,
    seed: $('seed-random').checked ? null : Number($('seed').value),
    steps: Number($('steps').value), scheduler: $('scheduler').value, guidance: Number($('guidance').value),
    width: Number($('width').value), height: Number($('height').value), count: Number($('count').value),
    model: $('model').value, concepts, globalLock: $('global-lock').checked, approximate: $('approximate').checked,
    conceptStart: $('concept-start').value === '' ? null : Number($('concept-start').value),
    sideSteering: $('side-steering').value === '' ? null : Number($('side-steering').value),
  };
}

async function submitGenerate(request) {
  $('generate-error').textContent = '';
  try {
    const job = await api('POST', '/api/generate', request);
    state.lastGenerate = job.request;
    state.generateJob = job.id;
    jobChanged(job);
    if (!request.sweep) $('seed').value = job.request.seed; // "random" drew one: the sliders keep it
    return job;
  } catch (e) {
    $('generate-error').textContent = e.message;
    return null;
  }
}

// A released slider draws the last picture again with the same seed and the gates as they are now; a redraw still
// waiting or running for an earlier position is cancelled first.
async function redrawWithSameSeed() {
  const last = state.lastGenerate;
  if (!last) return;
  const previous = state.jobs.get(state.generateJob);
  if (previous && (previous.state === 'queued' || previous.state === 'running')) {
    api('POST', `/api/jobs/${previous.id}/cancel`).catch(() => {});
  }
  const request = generateRequest();
  request.seed = last.seed;
  request.sweep = null;
  await submitGenerate(request);
}

async function loadConcepts() {
  state.concepts = await api('GET', '/api/concepts');
  renderConcepts();
}

async function deleteConcept(name) {
  if (!confirm(`Delete the concept '${name}' from the library?`)) return;
  try { await api('DELETE', '/api/concepts/' + encodeURIComponent(name)); } catch (e) { alert(e.message); }
  loadConcepts();
}

async function uploadConcept(event) {
  event.preventDefault();
  $('upload-error').textContent = '';
  const file = $('concept-file').files[0];
  if (!file) { $('upload-error').textContent = 'choose a .safetensors concept file'; return; }
  const form = new FormData();
  form.append('file', file);
  if ($('concept-overwrite').checked) form.append('overwrite', 'true');
  try { await api('POST', '/api/concepts', form); $('concept-file').value = ''; } catch (e) { $('upload-error').textContent = e.message; }
  loadConcepts();
}

async function submitTrain(event, overwrite) {
  if (event) event.preventDefault();
  $('train-error').textContent = '';
  const form = new FormData();
  form.append('word', $('train-word').value);
  form.append('supercategory', $('train-super').value);
  form.append('trainSteps', $('train-steps').value);
  form.append('seed', $('train-seed').value);
  if ($('train-sample-every').value !== '') form.append('sampleEvery', $('train-sample-every').value);
  form.append('mask', $('train-mask').value);
  form.append('model', $('model').value);
  if ($('train-examples').value) form.append('examples', $('train-examples').value);
  else for (const f of $('train-photos').files) form.append('photos', f, f.name);
  if ($('train-mask').value === 'files') for (const f of $('train-masks').files) form.append('masks', f, f.name);
  if (overwrite) form.append('overwrite', 'true');
  try {
    const job = await api('POST', '/api/train', form);
    state.trainJob = job.id;
    jobChanged(job);
  } catch (e) {
    if (e.status === 409 && !overwrite && confirm(e.message + '\n\nReplace it?')) return submitTrain(null, true);
    $('train-error').textContent = e.message;
  }
}

async function showExamples() {
  const set = $('train-examples').value;
  const sets = state.examples || [];
  const chosen = sets.find((s) => s.name === set);
  $('example-thumbs').replaceChildren(...(chosen ? chosen.photos : []).map((url) => el('img', { src: url, alt: set })));
  if (chosen) { $('train-word').value = set; $('train-super').value = set.replace(/^my-/, ''); }
}

async function start() {
  document.querySelectorAll('.tab').forEach((t) => t.addEventListener('click', () => showView(t.dataset.view)));
  $('generate-form').addEventListener('submit', (e) => { e.preventDefault(); submitGenerate(generateRequest()); });
  $('sweep').addEventListener('click', () => {
    const request = generateRequest();
    request.sweep = $('sweep-betas').value.split(',').map((s) => Number(s.trim())).filter((b) => !Number.isNaN(b));
    submitGenerate(request);
  });
  $('upload-form').addEventListener('submit', uploadConcept);
  $('train-form').addEventListener('submit', (e) => submitTrain(e, false));
  $('train-examples').addEventListener('change', showExamples);
  $('train-mask').addEventListener('change', () => { $('train-masks-label').hidden = $('train-mask').value !== 'files'; });
  $('train-cancel').addEventListener('click', () => { if (state.trainJob) api('POST', `/api/jobs/${state.trainJob}/cancel`).catch(() => {}); });

  state.info = await api('GET', '/api/info');
  $('scheduler').replaceChildren(...state.info.schedulers.map((s) => el('option', { value: s }, s)));
  $('model').replaceChildren(...state.info.models.map((m) => el('option', { value: m.name }, `${m.name} (${m.family})`)));
  if (state.info.defaultModel) $('model').value = state.info.defaultModel;
  $('concept-start').value = state.info.defaults.conceptStart;
  $('side-steering').value = state.info.defaults.sideSteering;
  state.examples = await api('GET', '/api/examples');
  state.examples.forEach((s) => $('train-examples').append(el('option', { value: s.name }, s.name)));
  await loadConcepts();
  listen();
}

start().catch((e) => { $('connection').textContent = 'error: ' + e.message; });
