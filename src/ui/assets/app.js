// mlspace-gitops web UI: the state filter without a reload, and the self-refresh.
//
// Every few seconds (data-refresh on <body>) the page is fetched again with If-None-Match;
// a 304 costs nothing, a new page replaces <main> only when it differs. Polling stops while
// the tab is hidden and backs off (doubling, up to 5 minutes) while requests fail, so an
// unreachable daemon is not hammered by open tabs.
(function () {
  'use strict';
  var every = (parseInt(document.body.getAttribute('data-refresh'), 10) || 5) * 1000;
  var delay = every;
  var etag = null;
  var timer = null;
  var busy = false;

  function note(text) {
    var el = document.getElementById('refreshed');
    if (el) { el.textContent = text; }
  }

  // Show the rows of one state (or all), mark its link, and keep the URL linkable.
  function filter(state) {
    var rows = document.querySelectorAll('table.resources tbody tr');
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = state !== '' && rows[i].getAttribute('data-state') !== state;
    }
    var links = document.querySelectorAll('nav.filter a');
    for (var j = 0; j < links.length; j++) {
      links[j].classList.toggle('active', links[j].getAttribute('data-filter') === state);
    }
    var url = new URL(window.location.href);
    if (state === '') { url.searchParams.delete('state'); } else { url.searchParams.set('state', state); }
    window.history.replaceState(null, '', url.pathname + url.search);
  }

  function wire() {
    var links = document.querySelectorAll('nav.filter a');
    for (var i = 0; i < links.length; i++) {
      links[i].addEventListener('click', function (ev) {
        ev.preventDefault();
        filter(this.getAttribute('data-filter'));
      });
    }
  }

  function schedule(ms) {
    window.clearTimeout(timer);
    timer = window.setTimeout(poll, ms);
  }

  function poll() {
    if (document.hidden || busy) { return; }
    busy = true;
    var headers = {};
    if (etag) { headers['If-None-Match'] = etag; }
    // From the origin: fetch refuses a URL resolved against a page address that holds a
    // user and password (http://user:pass@host/), and the origin never holds them.
    var url = window.location.origin + window.location.pathname + window.location.search;
    window.fetch(url, {
      headers: headers, cache: 'no-store', credentials: 'same-origin'
    }).then(function (r) {
      if (r.status === 304) { return null; }
      if (!r.ok && r.status !== 404) { throw new Error('HTTP ' + r.status); }
      etag = r.headers.get('ETag');
      return r.text();
    }).then(function (text) {
      delay = every;
      if (text !== null) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        // The source line and the page body; the rest (navigation) does not change.
        ['source', 'main'].forEach(function (id) {
          var fresh = doc.getElementById(id);
          var current = document.getElementById(id);
          if (fresh && current && fresh.innerHTML !== current.innerHTML) {
            current.replaceWith(document.adoptNode(fresh));
            if (id === 'main') { wire(); }
          }
        });
      }
      note('updated ' + new Date().toLocaleTimeString());
    }).catch(function (e) {
      delay = Math.min(delay * 2, 300000);
      note('refresh failed (' + e.message + '); next try in ' + Math.round(delay / 1000) + ' s');
    }).then(function () {
      busy = false;
      schedule(delay);
    });
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) { schedule(0); }
  });
  wire();
  schedule(every);
})();
