/*
 * The agent viewer: the customer's page (the snapshot) in a sandboxed iframe sized to the
 * customer's viewport, and a panel listing each resource with where the agent's browser got it.
 *
 * It polls GET sessions/current every 2 seconds and reloads the frame when a new snapshot has been
 * posted. Everything the customer's page contributes (URLs, the page address) is written with
 * textContent, never as markup. The frame is sandboxed without allow-scripts and without
 * allow-same-origin: the snapshot cannot run script, and this page does not reach into it either.
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var token = new URLSearchParams(location.search).get("token") || "";
  // This page is <prefix>/agent: every endpoint is relative to <prefix>/.
  var base = new URL(".", location.href).href;

  var frame = document.getElementById("snapshot");
  var frameBox = document.getElementById("frame-box");
  var waiting = document.getElementById("waiting");
  var stateLabel = document.getElementById("state");
  var pageUrl = document.getElementById("page-url");
  var pageMeta = document.getElementById("page-meta");
  var summary = document.getElementById("summary");
  var tbody = document.querySelector("#resources tbody");

  var shownVersion = null;
  var timer = null;
  var inFlight = false;
  var expectingLoad = false;
  var snapshotSrc = null;
  var ended = false;

  function endpoint(path, params) {
    var url = new URL(path, base);
    Object.keys(params || {}).forEach(function (key) { url.searchParams.set(key, params[key]); });
    return url.href;
  }

  function setState(text, kind) {
    stateLabel.textContent = text;
    stateLabel.className = "state" + (kind ? " " + kind : "");
  }

  // The frame navigated on its own (the agent followed a link in the snapshot): the agent view is
  // the customer's page, so bring the snapshot back.
  frame.addEventListener("load", function () {
    if (expectingLoad) {
      expectingLoad = false;
      // The frame has just asked for its resources: show where they came from without waiting.
      schedule(300);
      return;
    }
    if (snapshotSrc) {
      expectingLoad = true;
      frame.src = snapshotSrc;
    }
  });

  function showSnapshot(snapshot) {
    var viewport = snapshot.viewport || {};
    if (viewport.width && viewport.height) {
      frame.style.width = viewport.width + "px";
      frame.style.height = viewport.height + "px";
    }
    pageUrl.textContent = snapshot.url || "";
    pageUrl.title = snapshot.url || "";
    var scroll = snapshot.scroll || {};
    pageMeta.textContent = (viewport.width || "?") + " x " + (viewport.height || "?") +
      (scroll.x || scroll.y ? ", scrolled to " + (scroll.x || 0) + ", " + (scroll.y || 0) : "");
    if (snapshot.version !== shownVersion) {
      shownVersion = snapshot.version;
      snapshotSrc = endpoint("snapshot", { token: token, v: snapshot.version || "" });
      expectingLoad = true;
      frame.src = snapshotSrc;
      frame.setAttribute("data-version", snapshot.version || "");
    }
    frameBox.hidden = false;
    waiting.hidden = true;
  }

  function displayUrl(url, pageOrigin) {
    try {
      var parsed = new URL(url);
      if (parsed.origin === pageOrigin) { return parsed.pathname + parsed.search; }
    } catch (e) { /* shown as it is */ }
    return url;
  }

  function sourceOf(row) {
    if (row.served) {
      var source = row.served.source;
      if (source === "cache" && row.served.tier) { return ["cache", "cache " + row.served.tier]; }
      return [source, source];
    }
    if (row.stored) { return ["cache", "cache " + row.stored.tier]; }
    return ["none", "-"];
  }

  function stateOf(row) {
    if (row.served) {
      var status = row.served.status;
      if (row.served.source === "direct") { return "loaded directly (" + status + ")"; }
      return status === 200 ? "served" : "HTTP " + status;
    }
    if (row.stored) { return "uploaded, not requested"; }
    return "";
  }

  function renderResources(info) {
    var rows = new Map();
    (info.resources || []).forEach(function (r) {
      rows.set(r.url, { url: r.url, stored: r, served: null });
    });
    (info.served || []).forEach(function (s) {
      var row = rows.get(s.url) || { url: s.url, stored: null, served: null };
      row.served = s;
      rows.set(s.url, row);
    });

    var pageOrigin = "";
    try { pageOrigin = new URL((info.snapshot && info.snapshot.url) || info.page).origin; } catch (e) { /* none */ }
    var counts = { cache: 0, proxy: 0, direct: 0, none: 0 };
    // The page's own origin first, then the others; by URL within each.
    function key(row) { return (row.url.indexOf(pageOrigin + "/") === 0 ? "0 " : "1 ") + row.url; }
    var sorted = Array.from(rows.values()).sort(function (a, b) {
      var ka = key(a), kb = key(b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    var fragment = document.createDocumentFragment();
    sorted.forEach(function (row) {
      var source = sourceOf(row);
      counts[source[0]] = (counts[source[0]] || 0) + 1;
      var tr = document.createElement("tr");
      tr.setAttribute("data-url", row.url);
      tr.setAttribute("data-source", source[0]);
      var url = document.createElement("td");
      url.className = "url";
      url.textContent = displayUrl(row.url, pageOrigin);
      url.title = row.url;
      var src = document.createElement("td");
      var badge = document.createElement("span");
      badge.className = "source " + source[0];
      badge.textContent = source[1];
      src.appendChild(badge);
      var st = document.createElement("td");
      st.className = "status";
      st.textContent = stateOf(row);
      tr.appendChild(url);
      tr.appendChild(src);
      tr.appendChild(st);
      fragment.appendChild(tr);
    });
    tbody.replaceChildren(fragment);
    var settings = info.settings || {};
    summary.textContent = sorted.length + " resources: " + counts.cache + " from the cache, " +
      counts.proxy + " proxied, " + counts.direct + " loaded directly" +
      (settings.enableStaticResourceService === false ? " (the customer's uploads are off)" : "") + ".";
  }

  function schedule(ms) {
    if (ended) { return; }
    clearTimeout(timer);
    timer = setTimeout(poll, ms);
  }

  function poll() {
    if (ended || inFlight) { return; }
    inFlight = true;
    fetch(endpoint("sessions/current", { token: token }), { cache: "no-store", credentials: "omit" })
      .then(function (response) {
        if (response.status === 403 || response.status === 404) {
          ended = true;
          setState("Session ended", "ended");
          return null;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (info) {
        if (!info) { return; }
        if (info.snapshot) {
          showSnapshot(info.snapshot);
          setState("Live", "live");
        } else {
          setState("Waiting", "");
        }
        renderResources(info);
      })
      .catch(function () { setState("Reconnecting...", ""); })
      .then(function () {
        inFlight = false;
        schedule(POLL_MS);
      });
  }

  if (!token) {
    setState("No token", "ended");
    waiting.textContent = "This page needs ?token=<view token>: join from the agent console with the customer's code.";
    return;
  }
  poll();
})();
