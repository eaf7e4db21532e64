// The Heron console's script: swaps in the fragments the server renders (/console/overview,
// /console/run) and draws the series of /console/metrics. No framework, no build step.
(function () {
  'use strict';
  var REFRESH_MS = 2000;
  var $ = function (id) { return document.getElementById(id); };

  function headers(json) {
    var h = {};
    var token = sessionStorage.getItem('heron-token');
    if (token) { h.Authorization = 'Bearer ' + token; }
    if (json) { h['Content-Type'] = 'application/json'; }
    return h;
  }

  function status(text) { $('status').textContent = text; }

  // -- collections ------------------------------------------------------------------------------
  function collections() {
    return Array.prototype.map.call(document.querySelectorAll('#overview .collection'), function (s) {
      return {
        db: s.dataset.db, name: s.dataset.collection,
        vectors: JSON.parse(s.dataset.vectors || '[]'), text: JSON.parse(s.dataset.textSearch || '[]')
      };
    });
  }

  function fillCollections() {
    var select = $('collection');
    var chosen = select.value;
    var list = collections();
    var wanted = list.map(function (c) { return c.db + '/' + c.name; }).join('|');
    if (select.dataset.list !== wanted) {
      select.innerHTML = '';
      list.forEach(function (c) {
        var o = document.createElement('option');
        o.value = c.db + '/' + c.name;
        o.textContent = c.db === 'default' ? c.name : c.db + '.' + c.name;
        select.appendChild(o);
      });
      select.dataset.list = wanted;
      if (chosen && wanted.split('|').indexOf(chosen) >= 0) { select.value = chosen; }
      modeChanged();
    }
  }

  function current() {
    var key = $('collection').value;
    return collections().filter(function (c) { return c.db + '/' + c.name === key; })[0];
  }

  function refresh() {
    return fetch('/console/overview', { headers: headers() }).then(function (r) {
      return r.text().then(function (html) {
        $('overview').innerHTML = html;
        fillCollections();
        $('refreshed').textContent = r.ok ? 'updated ' + new Date().toLocaleTimeString() : '';
        status(r.ok ? 'connected' : r.status === 401 ? 'sign in' : 'error ' + r.status);
      });
    }).catch(function () { status('server unreachable'); });
  }

  // -- playground -----------------------------------------------------------------------------
  function modeChanged() {
    var search = $('mode').value === 'search';
    $('search-inputs').hidden = !search;
    var c = current();
    var field = $('anns_field');
    var chosen = field.value;
    field.innerHTML = '';
    (c ? c.vectors : []).forEach(function (v) {
      var o = document.createElement('option');
      o.value = o.textContent = v;
      field.appendChild(o);
    });
    if (chosen) { field.value = chosen; }
    var text = c && c.text.indexOf(field.value) >= 0;
    $('data-label').firstChild.textContent = text ? 'Text to search for (or a vector as JSON) ' : 'Vector (JSON) ';
  }

  function run(event) {
    event.preventDefault();
    var key = $('collection').value;
    var slash = key.indexOf('/');
    var body = {
      db: key.slice(0, slash), collection: key.slice(slash + 1), mode: $('mode').value,
      filter: $('filter').value, output_fields: $('output_fields').value, limit: $('limit').value,
      data: $('data').value, anns_field: $('anns_field').value
    };
    $('run').disabled = true;
    fetch('/console/run', { method: 'POST', headers: headers(true), body: JSON.stringify(body) })
      .then(function (r) { return r.text(); })
      .then(function (html) { $('result').innerHTML = html; })
      .catch(function (e) { $('result').textContent = String(e); })
      .then(function () { $('run').disabled = false; });
  }

  // -- metrics over time --------------------------------------------------------------------------
  var CHARTS = [
    ['calls/s', function (m, i) { return rate(m, 'calls', i); }],
    ['failed calls/s', function (m, i) { return rate(m, 'failed', i); }],
    ['calls in flight', function (m, i) { return m.inflight[i]; }],
    ['rows', function (m, i) { return m.rows[i]; }],
    ['segments', function (m, i) { return m.segments[i]; }],
    ['index build backlog', function (m, i) { return m.backlog[i]; }],
    ['memory (MiB)', function (m, i) { return m.rss[i] / 1048576; }]
  ];

  function rate(m, key, i) {
    if (i === 0) { return 0; }
    var dt = m.t[i] - m.t[i - 1];
    return dt > 0 ? Math.max(0, m[key][i] - m[key][i - 1]) / dt : 0;
  }

  function fmt(v) {
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : (Math.round(v * 10) / 10).toString();
  }

  function draw(m) {
    var n = m.t.length;
    var html = CHARTS.map(function (chart) {
      var values = [];
      for (var i = 0; i < n; i++) { values.push(chart[1](m, i)); }
      var max = Math.max.apply(null, values.concat([1e-9]));
      var min = Math.min.apply(null, values.concat([0]));
      var points = values.map(function (v, i) {
        var x = n > 1 ? (i / (n - 1)) * 100 : 100;
        var y = 40 - ((v - min) / (max - min || 1)) * 36;
        return x.toFixed(2) + ',' + y.toFixed(2);
      }).join(' ');
      return '<div class="chart">' + chart[0] + ' <b>' + fmt(values[n - 1] || 0) + '</b>' +
        '<svg viewBox="0 0 100 42" preserveAspectRatio="none"><polyline fill="none" stroke="#1f6feb" ' +
        'stroke-width="1.5" vector-effect="non-scaling-stroke" points="' + points + '"/></svg></div>';
    });
    $('charts').innerHTML = html.join('');
  }

  function metrics() {
    return fetch('/console/metrics', { headers: headers() })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (m) { if (m && m.t) { draw(m); } })
      .catch(function () {});
  }

  // -- wiring ----------------------------------------------------------------------------------
  function tick() {
    if (!document.hidden) { refresh(); metrics(); }
  }

  $('login').addEventListener('submit', function (event) {
    event.preventDefault();
    sessionStorage.setItem('heron-token', $('token').value);
    $('token').value = '';
    tick();
  });
  $('playground').addEventListener('submit', run);
  $('mode').addEventListener('change', modeChanged);
  $('collection').addEventListener('change', modeChanged);
  $('anns_field').addEventListener('change', modeChanged);
  fillCollections();
  tick();
  setInterval(tick, REFRESH_MS);
})();
