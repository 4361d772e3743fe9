// The dashboard page: reads frames from /events (Server-Sent Events) and the
// selected device from /device/:id, and draws everything with the DOM and
// inline SVG. No library, no build step; inlined into page.html by server.ts.
// Data is only ever written with textContent/setAttribute, never as HTML.
(() => {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const HISTORY_POINTS = 600;
  const SEQ_ROWS = 14;
  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat('en-US');
  const n = (v) => numberFormat.format(v);

  let frame = null;
  let points = [];
  let connects = { widthS: 1, peaks: [] };
  let framesSeen = 0;
  let renderQueued = false;

  let cellIds = [];
  let cells = [];
  let cellStates = [];
  let selectedId = null;
  let selectedCell = null;

  let detailBusy = false;
  let detailAgain = false;

  // ------------------------------------------------------------ stream

  function setStatus(kind, text) {
    const el = $('stream-status');
    el.className = `status status-${kind}`;
    el.textContent = text;
  }

  let events = null;
  let runNames = [];
  let wantedRun = '';

  // The run to show: '' follows the latest; a name shows that run (a variant already over, say) whole.
  function openStream(run) {
    if (events) events.close();
    wantedRun = run;
    points = [];
    connects = { widthS: 1, peaks: [] };
    events = new EventSource(run ? `/events?run=${encodeURIComponent(run)}` : '/events');
    events.addEventListener('open', () => setStatus('live', 'live'));
    events.addEventListener('error', () => {
      if (events.readyState === EventSource.CLOSED) setStatus('down', 'refused or closed; reload to retry');
      else setStatus('wait', 'reconnecting…');
    });
    events.addEventListener('frame', (e) => onFrame(JSON.parse(e.data)));
  }

  function onFrame(msg) {
    framesSeen++;
    if (msg.reset) points = [];
    for (const p of msg.points) {
      const last = points[points.length - 1];
      if (last && last.seq === p.seq) points[points.length - 1] = p;
      else if (!last || p.seq > last.seq) points.push(p);
    }
    if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
    if (msg.connects) connects = msg.connects;
    if (msg.runs) renderRuns(msg.runs, msg.run);
    frame = msg.frame;
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(render);
    }
  }

  function render() {
    renderQueued = false;
    if (!frame) return;
    $('scenario').textContent = frame.scenario;
    $('sim-time').textContent = formatSimTime(frame.simTimeMs);
    $('frames-seen').textContent = n(framesSeen);
    renderTotals(frame.totals);
    renderGrid(frame.devices, frame.totals.devices);
    renderCounters(frame);
    renderCharts();
    if (selectedId !== null) refreshDetail();
  }

  function renderRuns(names, shown) {
    const pick = $('run-pick');
    if (names.join('\n') !== runNames.join('\n')) {
      runNames = names.slice();
      const options = [new Option('the latest, live', '')];
      for (const name of names) options.push(new Option(name, name));
      pick.replaceChildren(...options);
      pick.value = wantedRun;
    }
    $('run-field').hidden = names.length < 2 && wantedRun === '';
    $('run-shown').textContent = shown;
  }

  $('run-pick').addEventListener('change', () => openStream($('run-pick').value));

  // ------------------------------------------------------------ fleet

  function renderTotals(t) {
    $('total-devices').textContent = n(t.devices);
    $('total-awake').textContent = n(t.awake);
    $('total-asleep').textContent = n(t.asleep);
    $('total-reconnecting').textContent = n(t.reconnecting);
    $('total-offline').textContent = n(t.offline);
  }

  function renderGrid(devices, total) {
    let same = devices.length === cellIds.length;
    for (let i = 0; same && i < devices.length; i++) same = devices[i].id === cellIds[i];
    if (!same) rebuildGrid(devices);
    for (let i = 0; i < devices.length; i++) {
      const state = devices[i].state;
      if (cellStates[i] !== state) {
        cellStates[i] = state;
        cells[i].className = `cell s-${state}${cells[i] === selectedCell ? ' selected' : ''}`;
        cells[i].title = `${cellIds[i]}: ${state}`;
      }
    }
    $('grid-note').textContent = devices.length === total
      ? `All ${n(total)} devices. Click a cell to inspect it.`
      : `A sample of ${n(devices.length)} of ${n(total)} devices. Click a cell to inspect it.`;
  }

  function rebuildGrid(devices) {
    const grid = $('grid');
    const fragment = document.createDocumentFragment();
    cellIds = devices.map((d) => d.id);
    cells = [];
    cellStates = [];
    selectedCell = null;
    for (let i = 0; i < devices.length; i++) {
      const cell = document.createElement('div');
      cell.dataset.index = String(i);
      cells.push(cell);
      cellStates.push('');
      if (cellIds[i] === selectedId) selectedCell = cell;
      fragment.appendChild(cell);
    }
    grid.replaceChildren(fragment);
  }

  function markSelected(cell) {
    if (selectedCell) selectedCell.classList.remove('selected');
    selectedCell = cell;
    if (cell) {
      cell.classList.add('selected');
      cell.scrollIntoView({ block: 'nearest' });
    }
  }

  function select(id) {
    selectedId = id;
    const index = cellIds.indexOf(id);
    markSelected(index >= 0 ? cells[index] : null);
    $('pick-id').value = id;
    $('device-h').textContent = `Device ${id}`;
    refreshDetail();
  }

  $('grid').addEventListener('click', (e) => {
    const index = e.target.dataset && e.target.dataset.index;
    if (index !== undefined) select(cellIds[Number(index)]);
  });

  $('grid').addEventListener('keydown', (e) => {
    if (cells.length === 0) return;
    const columns = gridColumns();
    const current = selectedCell ? Number(selectedCell.dataset.index) : -1;
    const moves = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns, ArrowDown: columns, Home: -Infinity, End: Infinity };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const next = Math.max(0, Math.min(cells.length - 1, current < 0 ? 0 : current + moves[e.key]));
    select(cellIds[next]);
  });

  function gridColumns() {
    const top = cells[0].offsetTop;
    let columns = 0;
    while (columns < cells.length && cells[columns].offsetTop === top) columns++;
    return Math.max(1, columns);
  }

  $('pick').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('pick-id').value.trim();
    if (id) select(id);
  });

  // ------------------------------------------------------------ counters

  function renderCounters(f) {
    $('c-accepted').textContent = n(f.counters.accepted);
    $('c-acked').textContent = n(f.counters.acked);
    $('c-lost').textContent = n(f.counters.lost);
    $('c-duplicates').textContent = n(f.counters.duplicates);
    $('c-dropped').textContent = n(f.counters.dropped);
    $('b-queued').textContent = n(f.broker.queued);
    $('b-delivered').textContent = n(f.broker.delivered);
    $('b-connects').textContent = n(f.broker.connects);
    $('b-cps').textContent = n(round1(f.broker.connectsPerSecond));
    $('b-memory').textContent = formatBytes(f.broker.memoryEstimateBytes);
  }

  // ------------------------------------------------------------ selected device

  async function refreshDetail() {
    if (detailBusy) { detailAgain = true; return; }
    detailBusy = true;
    const id = selectedId;
    try {
      const res = await fetch(`/device/${encodeURIComponent(id)}`, { cache: 'no-store' });
      const body = await res.json();
      if (id === selectedId) {
        if (res.ok) renderDetail(body);
        else showDetailMessage(body.error || `HTTP ${res.status}`);
      }
    } catch (err) {
      if (id === selectedId) showDetailMessage(`Could not load the device: ${err.message}`);
    } finally {
      detailBusy = false;
      if (detailAgain) { detailAgain = false; refreshDetail(); }
    }
  }

  function showDetailMessage(text) {
    $('device-state').textContent = text;
    $('device-body').hidden = true;
    $('device-placeholder').hidden = true;
  }

  function renderDetail(d) {
    $('device-state').textContent = `${d.state}, ${n(d.inflight.length)} inflight, ${n(d.outbox.length)} in the outbox`;
    $('device-body').hidden = false;
    $('device-placeholder').hidden = true;
    fillTable('inflight', d.inflight, (r) => [n(r.token), String(r.packetId), `QoS ${r.qos}`, pill(r.state)]);
    fillTable('outbox', d.outbox, (r) => [n(r.token), `QoS ${r.qos}`, `${n(r.bytes)} B`, r.expiresInS === null ? 'never' : `${n(r.expiresInS)} s`]);
    renderSequence(d.handshakes);
  }

  function pill(state) {
    const span = document.createElement('span');
    span.className = `pill pill-${state}`;
    span.textContent = state;
    return span;
  }

  function fillTable(id, rows, cellsOf) {
    const table = $(id);
    const body = table.tBodies[0];
    const fragment = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement('tr');
      for (const value of cellsOf(row)) {
        const td = document.createElement('td');
        if (typeof value === 'string') td.textContent = value;
        else td.appendChild(value);
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    body.replaceChildren(fragment);
    table.hidden = rows.length === 0;
    $(`${id}-empty`).hidden = rows.length !== 0;
  }

  // Two lifelines, device and broker, and one arrow per packet, oldest at the top.
  function renderSequence(handshakes) {
    const list = handshakes.slice(-SEQ_ROWS);
    const svg = $('seq');
    const width = 560;
    const deviceX = 150;
    const brokerX = 510;
    const top = 46;
    const row = 30;
    const height = top + Math.max(1, list.length) * row + 8;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.replaceChildren();

    const defs = el('defs');
    for (const kind of ['publish', 'ack', 'pubrel', 'other']) {
      const marker = el('marker', { id: `head-${kind}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: 'userSpaceOnUse', orient: 'auto' });
      marker.appendChild(el('path', { d: 'M0,0 L10,5 L0,10 z' }));
      defs.appendChild(marker);
    }
    svg.appendChild(defs);

    for (const [x, name] of [[deviceX, 'Device'], [brokerX, 'Broker']]) {
      svg.appendChild(el('line', { class: 'life', x1: x, y1: 30, x2: x, y2: height - 4 }));
      const actor = el('g', { class: 'actor' });
      actor.appendChild(el('rect', { x: x - 44, y: 4, width: 88, height: 26, rx: 6 }));
      actor.appendChild(text(name, { x, y: 21 }));
      svg.appendChild(actor);
    }

    const textList = $('seq-text');
    textList.replaceChildren();
    if (list.length === 0) {
      svg.appendChild(text('No handshakes recorded yet.', { class: 'label', x: (deviceX + brokerX) / 2, y: top + 18 }));
      return;
    }
    list.forEach((h, i) => {
      const y = top + i * row + 20;
      const kind = packetKind(h.packet);
      const [x1, x2] = h.dir === 'c2s' ? [deviceX + 2, brokerX - 2] : [brokerX - 2, deviceX + 2];
      const g = el('g', { class: 'msg' });
      g.appendChild(text(formatStamp(h.tMs), { class: 'time', x: deviceX - 54, y: y + 3 }));
      g.appendChild(el('line', { class: `arrow k-${kind}`, x1, y1: y, x2, y2: y, 'marker-end': `url(#head-${kind})` }));
      g.appendChild(text(h.packet, { class: 'label', x: (deviceX + brokerX) / 2, y: y - 6 }));
      svg.appendChild(g);
      const item = document.createElement('li');
      item.textContent = `${formatStamp(h.tMs)}: ${h.dir === 'c2s' ? 'device to broker' : 'broker to device'}, ${h.packet}`;
      textList.appendChild(item);
    });
  }

  function packetKind(packet) {
    const type = packet.split(' ')[0];
    if (type === 'PUBLISH') return 'publish';
    if (type === 'PUBREL') return 'pubrel';
    if (type === 'PUBACK' || type === 'PUBREC' || type === 'PUBCOMP') return 'ack';
    return 'other';
  }

  // ------------------------------------------------------------ charts

  // All three charts share the x axis: sim time from the first point kept to
  // the latest, so a page opened after the run shows the run from its start.
  function renderCharts() {
    const last = points[points.length - 1];
    if (!last) return;
    const x0 = points[0].simTimeMs;
    const x1 = Math.max(last.simTimeMs, x0 + 1000);
    const xs = points.map((p) => p.simTimeMs);
    const marks = frame.marks || [];
    const span = ` over ${formatSimTime(x1 - x0)} of sim time`;

    lineChart($('chart-queue'), { x0, x1, marks, yTitle: 'messages queued at the broker', series: [
      { key: 'queue', label: 'queued', xs, values: points.map((p) => p.queued), area: true },
    ] });
    const peakQueue = Math.max(...points.map((p) => p.queued));
    nowText($('queue-now'), [['queue', 'Queued now', n(last.queued)]], `peak ${n(peakQueue)}${span}`);

    // Delivered and acked run close together: the wide solid line is drawn first, the dashed and dotted ones on top.
    lineChart($('chart-delivery'), { x0, x1, marks, yTitle: 'messages (running total)', legend: true, series: [
      { key: 'delivered', label: 'delivered', xs, values: points.map((p) => p.delivered) },
      { key: 'acked', label: 'acked', xs, values: points.map((p) => p.acked) },
      { key: 'lost', label: 'lost', xs, values: points.map((p) => p.lost) },
    ] });
    nowText($('delivery-now'), [
      ['delivered', 'Delivered by the broker', n(last.delivered)],
      ['acked', 'Publishes acked', n(last.acked)],
      ['lost', 'Lost', n(last.lost)],
    ], '');

    // One step per bucket of whole seconds: the most CONNECTs in one second within it.
    const cx = [];
    const cv = [];
    const width = connects.widthS * 1000;
    connects.peaks.forEach((v, i) => {
      cx.push(i * width, Math.min((i + 1) * width, x1));
      cv.push(v, v);
    });
    lineChart($('chart-connects'), { x0, x1, marks, yTitle: 'CONNECTs per second', series: [
      { key: 'connects', label: 'CONNECT/s', xs: cx, values: cv, area: true },
    ] });
    const peakRate = connects.peaks.reduce((m, v) => (v > m ? v : m), 0);
    const peakAt = connects.peaks.indexOf(peakRate) * connects.widthS;
    nowText($('connects-now'), [['connects', 'Connects per second now', n(round1(last.connectsPerSecond))]],
      `peak ${n(round1(peakRate))}/s at ${formatSimTime(peakAt * 1000)} (the busiest whole second${span})`);
    $('connects-now').dataset.peak = String(peakRate);
  }

  function nowText(p, items, tail) {
    p.replaceChildren();
    for (const [key, label, value] of items) {
      const span = document.createElement('span');
      span.className = 'item';
      const swatch = document.createElement('span');
      swatch.className = `key key-${key}`;
      swatch.setAttribute('aria-hidden', 'true');
      const b = document.createElement('b');
      b.textContent = value;
      span.append(swatch, `${label}: `, b);
      p.appendChild(span);
    }
    if (tail) {
      const span = document.createElement('span');
      span.className = 'item';
      span.textContent = tail;
      p.appendChild(span);
    }
  }

  const MARK_NAMES = { outage: 'outage', 'broker-restart': 'broker down', 'power-outage': 'power outage' };

  function lineChart(svg, { x0, x1, series, yTitle, marks, legend }) {
    const width = 480, height = 196, left = 46, right = 12, top = 26, bottom = 36;
    const plotW = width - left - right, plotH = height - top - bottom;
    let max = 0;
    for (const s of series) for (const v of s.values) if (v > max) max = v;
    const yMax = niceCeil(max);
    const sx = (x) => left + ((Math.min(Math.max(x, x0), x1) - x0) / (x1 - x0)) * plotW;
    const sy = (v) => top + plotH - (v / yMax) * plotH;

    svg.replaceChildren();
    // Fault windows first, under everything else.
    for (const m of marks) {
      if (m.toMs < x0 || m.fromMs > x1) continue;
      const a = sx(m.fromMs), b = Math.max(sx(m.toMs), a + 2);
      const g = el('g', { class: `mark mark-${m.kind}`, 'data-kind': m.kind });
      const title = el('title');
      title.textContent = `${m.label}: ${formatSimTime(m.fromMs)} to ${formatSimTime(m.toMs)}`;
      g.appendChild(title);
      g.appendChild(el('rect', { x: a.toFixed(1), y: top, width: (b - a).toFixed(1), height: plotH }));
      if (b - a > 44) g.appendChild(text(MARK_NAMES[m.kind] || m.kind, { class: 'mark-label', x: (a + 4).toFixed(1), y: top + 11 }));
      svg.appendChild(g);
    }
    for (let k = 0; k <= 4; k++) {
      const v = (yMax * k) / 4;
      const y = sy(v);
      svg.appendChild(el('line', { class: k === 0 ? 'axis' : 'gridline', x1: left, y1: y, x2: width - right, y2: y }));
      if (k % 2 === 0) svg.appendChild(text(compact(v), { class: 'tick ytick', x: left - 6, y: y + 3.5, 'text-anchor': 'end' }));
    }
    svg.appendChild(text(yTitle, { class: 'axis-title y-title', x: 2, y: 12 }));

    const unit = timeUnit(x1 - x0);
    const step = niceStep((x1 - x0) / unit.ms / 5) * unit.ms;
    for (let t = Math.ceil(x0 / step) * step; t <= x1 + 1e-6; t += step) {
      const x = sx(t);
      svg.appendChild(el('line', { class: 'xtick-line', x1: x, y1: top + plotH, x2: x, y2: top + plotH + 4 }));
      svg.appendChild(text(trimNumber(t / unit.ms), { class: 'tick xtick', x, y: top + plotH + 15, 'text-anchor': 'middle' }));
    }
    svg.appendChild(text(`sim time (${unit.name})`, { class: 'axis-title x-title', x: left + plotW / 2, y: height - 4, 'text-anchor': 'middle' }));

    for (const s of series) {
      let d = '';
      for (let i = 0; i < s.values.length; i++) d += `${i === 0 ? 'M' : 'L'}${sx(s.xs[i]).toFixed(1)},${sy(s.values[i]).toFixed(1)}`;
      if (s.values.length === 1) d += `L${sx(x1).toFixed(1)},${sy(s.values[0]).toFixed(1)}`;
      if (d === '') continue;
      if (s.area) {
        const base = sy(0).toFixed(1);
        svg.appendChild(el('path', { class: `area fill-${s.key}`, d: `${d}L${sx(s.xs[s.xs.length - 1]).toFixed(1)},${base}L${sx(s.xs[0]).toFixed(1)},${base}Z` }));
      }
      svg.appendChild(el('path', { class: `series c-${s.key}`, 'data-series': s.key, d }));
    }

    if (legend) {
      const g = el('g', { class: 'legend' });
      let x = width - right;
      for (const s of series.slice().reverse()) {
        const label = text(s.label, { class: 'legend-label', x, y: 12, 'text-anchor': 'end' });
        g.appendChild(label);
        x -= s.label.length * 6 + 6;
        g.appendChild(el('line', { class: `series c-${s.key}`, 'data-legend': s.key, x1: x - 20, y1: 8, x2: x, y2: 8 }));
        x -= 32;
      }
      svg.appendChild(g);
    }
  }

  /** The unit for a time axis of this span: seconds up to 3 min, minutes up to 3 h, then hours. */
  function timeUnit(spanMs) {
    if (spanMs <= 180_000) return { name: 's', ms: 1000 };
    if (spanMs <= 3 * 3_600_000) return { name: 'min', ms: 60_000 };
    return { name: 'h', ms: 3_600_000 };
  }

  function niceStep(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function trimNumber(v) {
    return String(Math.round(v * 100) / 100);
  }

  // ------------------------------------------------------------ helpers

  function el(name, attrs) {
    const node = document.createElementNS(SVG_NS, name);
    if (attrs) for (const k of Object.keys(attrs)) node.setAttribute(k, String(attrs[k]));
    return node;
  }

  function text(content, attrs) {
    const node = el('text', attrs);
    node.textContent = content;
    return node;
  }

  function niceCeil(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function compact(v) {
    if (v >= 1e6) return `${round1(v / 1e6)}M`;
    if (v >= 1e3) return `${round1(v / 1e3)}k`;
    return String(round1(v));
  }

  function round1(v) {
    return Math.round(v * 10) / 10;
  }

  function formatSimTime(ms) {
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
    return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
  }

  /** A handshake's time: packets of one exchange are milliseconds apart. */
  function formatStamp(ms) {
    return `${(ms / 1000).toFixed(3)} s`;
  }

  function formatBytes(b) {
    if (b >= 1 << 30) return `${round1(b / (1 << 30))} GiB`;
    if (b >= 1 << 20) return `${round1(b / (1 << 20))} MiB`;
    if (b >= 1 << 10) return `${round1(b / (1 << 10))} KiB`;
    return `${n(b)} B`;
  }

  openStream('');
})();
