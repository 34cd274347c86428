/*
 * cobrowse.js: the customer side of co-browse static resource synchronization (SPEC 8).
 *
 *   <script>var _genesys = { cobrowse: { enableStaticResourceService: true, css: { server: true } } };</script>
 *   <script src="/_cobrowse/cobrowse.js"></script>
 *
 * Options come from window._genesys.cobrowse and/or window._cobrowse (the latter wins key by key):
 *   enableStaticResourceService (true)  upload the resources the page uses
 *   css.server (true)                   let the server fetch what was not uploaded (allowed domains)
 *   ui (true)                           show the "Share my screen" button
 *
 * Page API: cobrowse.share() -> Promise<{session, code, view_token, synced, failed}>,
 * cobrowse.stop() -> Promise, cobrowse.status() -> {state, synced, total, failed, code}.
 *
 * Plain JavaScript, no build step, no framework. It talks to no one but the co-browse server, which
 * is wherever this file was loaded from, and to the origins of the page's own resources (reading
 * them as the page did, with its credentials).
 */
(function () {
  "use strict";

  if (window.cobrowse && window.cobrowse.__cobrowse) {
    return; // included twice: the first copy is in charge
  }

  // --- where the co-browse server is -------------------------------------------------------------

  var scriptElement = document.currentScript;
  var scriptSrc = scriptElement && scriptElement.src;
  if (!scriptSrc) {
    var candidates = document.querySelectorAll('script[src*="cobrowse.js"]');
    scriptSrc = candidates.length ? candidates[candidates.length - 1].src : "/_cobrowse/cobrowse.js";
  }
  // ".../_cobrowse/cobrowse.js" -> ".../_cobrowse/": every endpoint is relative to it.
  var BASE = new URL(".", new URL(scriptSrc, document.baseURI)).href;

  var STORAGE_KEY = "cobrowse.session";
  var MAX_SIZE = 10 * 1024 * 1024; // the server's default max_size: bigger ones go to the fallbacks
  var BATCH_PARTS = 20;
  var BATCH_BYTES = 5 * 1024 * 1024;
  var BATCHES_IN_FLIGHT = 3;
  var READS_IN_FLIGHT = 6;
  var CHECK_CHUNK = 5000;
  var UPDATE_DELAY = 800; // quiet time after a change before a new snapshot is posted
  var OUR_MARK = "__cobrowseOwn";
  var SCROLL_TAG = "cobrowse-scroll";
  var WIDGET_TAG = "cobrowse-widget";

  // What a stored resource may be; anything else is left to the fallbacks (the server says 415).
  var TYPE_BY_EXTENSION = {
    png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp",
    avif: "image/avif", svg: "image/svg+xml", ico: "image/x-icon", bmp: "image/bmp",
    css: "text/css", woff: "font/woff", woff2: "font/woff2", ttf: "font/ttf", otf: "font/otf",
    eot: "application/vnd.ms-fontobject"
  };

  function options() {
    var merged = {};
    var genesys = window._genesys && window._genesys.cobrowse;
    [genesys, window._cobrowse].forEach(function (source) {
      if (source && typeof source === "object") {
        Object.keys(source).forEach(function (key) { merged[key] = source[key]; });
      }
    });
    return {
      enableStaticResourceService: merged.enableStaticResourceService !== false,
      cssServer: !(merged.css && typeof merged.css === "object" && merged.css.server === false),
      ui: merged.ui !== false
    };
  }

  // --- state -------------------------------------------------------------------------------------

  var state = {
    state: "idle", // idle | starting | syncing | sharing | error | stopped
    session: null, code: null, uploadToken: null, viewToken: null,
    synced: 0, total: 0, failed: 0, error: null
  };
  var running = null; // the Promise of the sync in progress
  var again = false; // a change arrived during it: run once more
  var known = new Map(); // url -> {sha256, ok}: resources already settled on this page
  var updateTimer = null;
  var starting = null; // the Promise of a session being created
  var generation = 0; // bumped by stop(): a sync started before it must not touch the state after

  function saveSession() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
        base: BASE, session: state.session, code: state.code,
        upload_token: state.uploadToken, view_token: state.viewToken
      }));
    } catch (e) { /* storage disabled: sharing just will not survive navigation */ }
  }

  function loadSession() {
    try {
      var saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      if (saved && saved.base === BASE && saved.upload_token && saved.view_token) {
        return saved;
      }
    } catch (e) { /* nothing usable */ }
    return null;
  }

  function forgetSession() {
    try { sessionStorage.removeItem(STORAGE_KEY); } catch (e) { /* ignore */ }
    state.session = state.code = state.uploadToken = state.viewToken = null;
    known = new Map();
  }

  function setState(name, error) {
    state.state = name;
    state.error = error || null;
    render();
  }

  // --- talking to the co-browse server -----------------------------------------------------------

  function SessionGone() { this.message = "the co-browse session has ended"; }
  function Stopped() { this.message = "sharing was stopped"; }

  function api(path, init) {
    init = init || {};
    init.credentials = "include"; // the login cookie decides who may start a session
    init.headers = init.headers || {};
    if (state.uploadToken) {
      init.headers["X-Cobrowse-Token"] = state.uploadToken;
    }
    return fetch(new URL(path, BASE).href, init).then(function (response) {
      if (response.status === 403 && state.uploadToken) {
        throw new SessionGone();
      }
      return response;
    });
  }

  function postJson(path, body) {
    return api(path, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
    });
  }

  function expectOk(response, what) {
    if (!response.ok) {
      throw new Error(what + " failed (HTTP " + response.status + ")");
    }
    return response;
  }

  function createSession(opts) {
    return postJson("sessions", {
      enableStaticResourceService: opts.enableStaticResourceService,
      css: { server: opts.cssServer },
      page: location.href,
      charset: document.characterSet
    }).then(function (response) {
      if (response.status === 403) {
        throw new Error("you may not share this page (are you logged in?)");
      }
      return expectOk(response, "starting the session").json();
    }).then(function (answer) {
      state.session = answer.session;
      state.code = answer.code;
      state.uploadToken = answer.upload_token;
      state.viewToken = answer.view_token;
      saveSession();
    });
  }

  // --- URLs --------------------------------------------------------------------------------------

  /** The absolute http(s) URL of ``raw`` against ``base``, without the fragment; null otherwise. */
  function absolute(raw, base) {
    if (typeof raw !== "string") { return null; }
    raw = raw.trim();
    if (!raw || raw.charAt(0) === "#") { return null; }
    var url;
    try { url = new URL(raw, base || document.baseURI); } catch (e) { return null; }
    if (url.protocol !== "http:" && url.protocol !== "https:") { return null; }
    url.hash = "";
    return url.href;
  }

  // --- finding the URLs in CSS text ----------------------------------------------------------------

  function isHex(c) { return /^[0-9a-fA-F]$/.test(c); }
  function isSpace(c) { return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f"; }
  function isNameChar(c) { return /[A-Za-z0-9_\-]/.test(c) || c > "\x7f"; }

  /** Reads a CSS escape at text[i] (the backslash); returns [character, next index]. */
  function readEscape(text, i) {
    var j = i + 1;
    if (j >= text.length) { return ["\ufffd", j]; }
    if (isHex(text.charAt(j))) {
      var hex = "";
      while (j < text.length && hex.length < 6 && isHex(text.charAt(j))) { hex += text.charAt(j++); }
      if (j < text.length && isSpace(text.charAt(j))) { j++; }
      var code = parseInt(hex, 16);
      if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) { code = 0xfffd; }
      return [String.fromCodePoint(code), j];
    }
    return [text.charAt(j), j + 1];
  }

  /** Reads a quoted string starting at text[i]; returns [value, next index]. */
  function readString(text, i) {
    var quote = text.charAt(i), value = "", j = i + 1;
    while (j < text.length) {
      var c = text.charAt(j);
      if (c === quote) { return [value, j + 1]; }
      if (c === "\n") { return [value, j]; } // a bad string: CSS drops it
      if (c === "\\") {
        if (text.charAt(j + 1) === "\n") { j += 2; continue; }
        var escaped = readEscape(text, j);
        value += escaped[0];
        j = escaped[1];
        continue;
      }
      value += c;
      j++;
    }
    return [value, j];
  }

  /**
   * Every URL a piece of CSS refers to: url(), @import "x", and the strings of image-set().
   * A small tokenizer after CSS Syntax 3: comments and strings are skipped as such, escapes decoded.
   */
  function cssUrls(text) {
    var urls = [], functions = [], i = 0, n = text.length, importPending = false;
    while (i < n) {
      var c = text.charAt(i);
      if (c === "/" && text.charAt(i + 1) === "*") {
        var end = text.indexOf("*/", i + 2);
        i = end < 0 ? n : end + 2;
        continue;
      }
      if (c === '"' || c === "'") {
        var string = readString(text, i);
        i = string[1];
        var inside = functions[functions.length - 1];
        if (importPending || inside === "image-set" || inside === "-webkit-image-set") {
          urls.push(string[0]);
        }
        importPending = false;
        continue;
      }
      if (c === "@") {
        var k = i + 1, name = "";
        while (k < n && isNameChar(text.charAt(k))) { name += text.charAt(k++); }
        importPending = name.toLowerCase() === "import";
        i = k;
        continue;
      }
      if (isNameChar(c) || c === "\\") {
        var ident = "", j = i;
        while (j < n) {
          var d = text.charAt(j);
          if (isNameChar(d)) { ident += d; j++; } else if (d === "\\") {
            var esc = readEscape(text, j);
            ident += esc[0];
            j = esc[1];
          } else { break; }
        }
        i = j;
        if (text.charAt(i) === "(") {
          var fn = ident.toLowerCase();
          if (fn === "url" || fn === "src") {
            var url = readUrlFunction(text, i + 1);
            if (url[0] !== null) { urls.push(url[0]); }
            i = url[1];
            importPending = false;
            continue;
          }
          functions.push(fn);
          i++;
        }
        continue;
      }
      if (c === "(") { functions.push(""); } else if (c === ")") { functions.pop(); } else if (
        c === ";" || c === "{" || c === "}") { importPending = false; }
      i++;
    }
    return urls;
  }

  /** The argument of url( starting at text[i]; returns [url or null, index after the ")"]. */
  function readUrlFunction(text, i) {
    var n = text.length;
    while (i < n && isSpace(text.charAt(i))) { i++; }
    var value = null;
    if (text.charAt(i) === '"' || text.charAt(i) === "'") {
      var string = readString(text, i);
      value = string[0];
      i = string[1];
    } else {
      value = "";
      while (i < n && text.charAt(i) !== ")") {
        var c = text.charAt(i);
        if (isSpace(c)) { i++; continue; }
        if (c === "\\") {
          var esc = readEscape(text, i);
          value += esc[0];
          i = esc[1];
          continue;
        }
        value += c;
        i++;
      }
    }
    // Skip to the closing parenthesis (src() may carry modifiers after the string).
    var depth = 0;
    while (i < n) {
      var d = text.charAt(i);
      if (d === "(") { depth++; } else if (d === ")") {
        if (depth === 0) { return [value, i + 1]; }
        depth--;
      }
      i++;
    }
    return [value, n];
  }

  // --- finding the resources the page uses ---------------------------------------------------------

  /** The document and every open shadow root inside it (ours excepted), outermost first. */
  function allRoots() {
    var roots = [document], i = 0;
    while (i < roots.length) {
      var elements = roots[i++].querySelectorAll("*");
      for (var j = 0; j < elements.length; j++) {
        var el = elements[j];
        if (el.shadowRoot && !el[OUR_MARK]) { roots.push(el.shadowRoot); }
      }
    }
    return roots;
  }

  function sheetRules(sheet) {
    try { return sheet.cssRules; } catch (e) { return null; } // cross-origin without CORS
  }

  function hrefOf(el) {
    return el.getAttribute("href") || el.getAttributeNS("http://www.w3.org/1999/xlink", "href");
  }

  /** Map url -> true of every resource the page uses now (stylesheet text found later adds more). */
  function discover() {
    var found = new Map(), visitedSheets = new Set();
    function add(raw, base) {
      var url = absolute(raw, base);
      if (url) { found.set(url, true); }
    }
    function addCss(text, base) {
      if (text) { cssUrls(text).forEach(function (raw) { add(raw, base); }); }
    }
    function walkSheet(sheet, base) {
      if (!sheet || visitedSheets.has(sheet)) { return; }
      visitedSheets.add(sheet);
      if (sheet.href) { add(sheet.href); base = sheet.href; }
      var rules = sheetRules(sheet);
      if (!rules) { return; } // its text is read and scanned with the upload
      for (var i = 0; i < rules.length; i++) {
        var rule = rules[i];
        if (typeof CSSImportRule !== "undefined" && rule instanceof CSSImportRule) {
          add(rule.href, base);
          walkSheet(rule.styleSheet, absolute(rule.href, base) || base);
        } else {
          // A grouping rule's text holds its nested rules: one scan covers @media, @supports,
          // @layer, @container and nesting, and @font-face src lists.
          addCss(rule.cssText, base);
        }
      }
    }

    allRoots().forEach(function (root) {
      var docBase = document.baseURI;
      root.querySelectorAll("img").forEach(function (img) {
        add(img.currentSrc, img.baseURI);
        add(img.getAttribute("src"), img.baseURI);
      });
      root.querySelectorAll("link[rel][href]").forEach(function (link) {
        var rel = (link.getAttribute("rel") || "").toLowerCase().split(/\s+/);
        if (rel.indexOf("stylesheet") >= 0 && !(link.sheet && link.sheet.disabled)) {
          add(link.href);
        }
        if (rel.indexOf("icon") >= 0 || rel.indexOf("apple-touch-icon") >= 0) {
          add(link.href);
        }
      });
      root.querySelectorAll("video[poster]").forEach(function (video) {
        add(video.getAttribute("poster"), video.baseURI);
      });
      root.querySelectorAll("input[src]").forEach(function (input) {
        if ((input.getAttribute("type") || "").toLowerCase() === "image") {
          add(input.getAttribute("src"), input.baseURI);
        }
      });
      root.querySelectorAll("image, use, feImage").forEach(function (el) {
        add(hrefOf(el), el.baseURI); // "#icon" (same document) gives null
      });
      root.querySelectorAll("[background]").forEach(function (el) {
        add(el.getAttribute("background"), el.baseURI);
      });
      root.querySelectorAll("[style]").forEach(function (el) {
        if (!el[OUR_MARK]) { addCss(el.getAttribute("style"), docBase); }
      });
      root.querySelectorAll("style").forEach(function (style) {
        addCss(style.textContent, docBase);
      });
      Array.prototype.forEach.call(root.styleSheets || [], function (sheet) { walkSheet(sheet, docBase); });
      Array.prototype.forEach.call(root.adoptedStyleSheets || [], function (sheet) { walkSheet(sheet, docBase); });
    });
    return found;
  }

  // --- reading, hashing, uploading ---------------------------------------------------------------

  function isSameOrigin(url) { return new URL(url).origin === location.origin; }

  function guessType(url, type) {
    var mime = (type || "").split(";")[0].trim().toLowerCase();
    if (mime && mime !== "application/octet-stream" && mime !== "binary/octet-stream" && mime !== "text/plain") {
      return type;
    }
    var match = /\.([a-z0-9]+)$/i.exec(new URL(url).pathname);
    return (match && TYPE_BY_EXTENSION[match[1].toLowerCase()]) || type || "";
  }

  function cssCharset(type) {
    var match = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type || "");
    return match ? match[1] : null;
  }

  /** The text of a stylesheet's bytes, decoded as CSS Syntax 3 says (to find the URLs in it). */
  function decodeCss(bytes, type) {
    var view = new Uint8Array(bytes);
    var label = null;
    if (view[0] === 0xef && view[1] === 0xbb && view[2] === 0xbf) { label = "utf-8"; } else if (
      view[0] === 0xfe && view[1] === 0xff) { label = "utf-16be"; } else if (
      view[0] === 0xff && view[1] === 0xfe) { label = "utf-16le"; }
    label = label || cssCharset(type);
    if (!label) {
      var head = String.fromCharCode.apply(null, view.subarray(0, 1024));
      var declared = /^@charset "([^"]*)";/.exec(head);
      if (declared) { label = declared[1]; }
    }
    var decoders = [label, document.characterSet, "utf-8"];
    for (var i = 0; i < decoders.length; i++) {
      if (!decoders[i]) { continue; }
      try { return new TextDecoder(decoders[i]).decode(view); } catch (e) { /* unknown label */ }
    }
    return "";
  }

  function tooLarge(response) {
    var length = parseInt(response.headers.get("Content-Length") || "", 10);
    return length > MAX_SIZE;
  }

  /**
   * Reads ``url`` as the page can: same-origin with its cookies, cross-origin in CORS mode with
   * credentials (then without, for public CDNs that answer "*"). Resolves to {bytes, type} or to
   * {error}; never rejects.
   */
  function readResource(url) {
    var attempts = isSameOrigin(url)
      ? [{ credentials: "same-origin" }]
      : [{ mode: "cors", credentials: "include" }, { mode: "cors", credentials: "omit", cache: "no-store" }];
    var attempt = 0;
    function next(lastError) {
      if (attempt >= attempts.length) { return Promise.resolve({ error: lastError || "unreadable" }); }
      var init = attempts[attempt++];
      var controller = typeof AbortController !== "undefined" ? new AbortController() : null;
      if (controller) { init.signal = controller.signal; }
      return fetch(url, init).then(function (response) {
        if (!response.ok) {
          return { error: "HTTP " + response.status };
        }
        if (tooLarge(response)) {
          if (controller) { controller.abort(); }
          return { error: "too_large" };
        }
        var type = guessType(url, response.headers.get("Content-Type"));
        return response.arrayBuffer().then(function (bytes) {
          if (bytes.byteLength > MAX_SIZE) { return { error: "too_large" }; }
          return { bytes: bytes, type: type };
        });
      }, function () { return next("unreadable"); });
    }
    return next();
  }

  function hex(buffer) {
    var bytes = new Uint8Array(buffer), out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }

  function sha256(bytes) {
    if (!window.crypto || !crypto.subtle) { return Promise.resolve(null); }
    return crypto.subtle.digest("SHA-256", bytes).then(hex, function () { return null; });
  }

  /** Runs ``worker`` over ``items`` (which may grow meanwhile), at most ``limit`` at a time. */
  function pool(items, limit, worker) {
    return new Promise(function (resolve, reject) {
      var index = 0, active = 0, failed = false;
      function pump() {
        if (failed) { return; }
        if (index >= items.length && active === 0) { resolve(); return; }
        while (active < limit && index < items.length) {
          active++;
          Promise.resolve(worker(items[index++])).then(function () {
            active--;
            pump();
          }, function (error) {
            failed = true;
            reject(error);
          });
        }
      }
      pump();
    });
  }

  /** Reads every resource not settled yet, asks `check`, uploads what is missing. */
  function syncResources() {
    var urls = Array.from(discover().keys());
    var queued = new Set(urls);
    var read = []; // {url, bytes, type, sha256}
    state.total = queued.size;
    state.synced = 0;
    state.failed = 0;
    urls.forEach(function (url) {
      var settled = known.get(url);
      if (settled) {
        if (settled.ok) { state.synced++; } else { state.failed++; }
      }
    });
    render();

    function fail(url, error) {
      known.set(url, { ok: false, error: error });
      state.failed++;
      render();
    }

    var toRead = urls.filter(function (url) { return !known.has(url); });
    return pool(toRead, READS_IN_FLIGHT, function (url) {
      return readResource(url).then(function (result) {
        if (result.error) { fail(url, result.error); return null; }
        if (/^text\/css/i.test(result.type)) {
          // Whatever this sheet refers to is needed too (also for sheets CSSOM could not open).
          cssUrls(decodeCss(result.bytes, result.type)).forEach(function (raw) {
            var more = absolute(raw, url);
            if (more && !queued.has(more)) {
              queued.add(more);
              state.total++;
              if (known.has(more)) {
                if (known.get(more).ok) { state.synced++; } else { state.failed++; }
              } else {
                toRead.push(more);
              }
            }
          });
          render();
        }
        return sha256(result.bytes).then(function (digest) {
          read.push({ url: url, bytes: result.bytes, type: result.type, sha256: digest });
        });
      });
    }).then(function () {
      return missingOf(read);
    }).then(function (missing) {
      var missingSet = new Set(missing);
      var uploads = [];
      read.forEach(function (item) {
        if (missingSet.has(item.url)) {
          uploads.push(item);
        } else {
          known.set(item.url, { ok: true, sha256: item.sha256 });
          state.synced++;
        }
      });
      render();
      return upload(uploads, fail);
    });
  }

  /** The URLs among ``read`` that the server lacks (all of them without SubtleCrypto). */
  function missingOf(read) {
    var hashed = read.filter(function (item) { return item.sha256; });
    var unhashed = read.filter(function (item) { return !item.sha256; }).map(function (item) { return item.url; });
    var chunks = [];
    for (var i = 0; i < hashed.length; i += CHECK_CHUNK) { chunks.push(hashed.slice(i, i + CHECK_CHUNK)); }
    return Promise.all(chunks.map(function (chunk) {
      return postJson("resources/check", {
        resources: chunk.map(function (item) { return { url: item.url, sha256: item.sha256 }; })
      }).then(function (response) {
        return expectOk(response, "check").json();
      }).then(function (answer) { return answer.missing || []; });
    })).then(function (lists) {
      return unhashed.concat.apply(unhashed, lists);
    });
  }

  /** Uploads ``items`` as multipart batches (<= 20 parts, <= 5 MiB), 3 batches in flight. */
  function upload(items, fail) {
    var batches = [], current = [], bytes = 0;
    items.forEach(function (item) {
      var size = item.bytes.byteLength;
      if (current.length && (current.length >= BATCH_PARTS || bytes + size > BATCH_BYTES)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(item);
      bytes += size;
    });
    if (current.length) { batches.push(current); }

    return pool(batches, BATCHES_IN_FLIGHT, function (batch) {
      var form = new FormData();
      batch.forEach(function (item) {
        var name = new URL(item.url).pathname.split("/").pop() || "resource";
        form.append(item.url, new Blob([item.bytes], { type: item.type }), name);
      });
      return api("resources", { method: "POST", body: form }).then(function (response) {
        if (response.status !== 201 && response.status !== 422) {
          batch.forEach(function (item) { fail(item.url, "HTTP " + response.status); });
          return;
        }
        return response.json().then(function (answer) {
          var rejected = new Map();
          (answer.rejected || []).forEach(function (r) { rejected.set(r.url, r.error); });
          batch.forEach(function (item) {
            if (rejected.has(item.url)) {
              fail(item.url, rejected.get(item.url));
            } else {
              known.set(item.url, { ok: true, sha256: item.sha256 });
              state.synced++;
            }
          });
          render();
        });
      });
    });
  }

  // --- the snapshot ------------------------------------------------------------------------------

  function ruleTexts(rules) {
    var out = [];
    for (var i = 0; i < rules.length; i++) { out.push(rules[i].cssText); }
    return out;
  }

  /**
   * The CSS text of a <style> element's live rules when they differ from its markup (rules added
   * with insertRule, removed, or edited through the CSSOM); null when the markup says it all.
   */
  function cssomOnlyText(style) {
    var sheet = style.sheet;
    var rules = sheet && sheetRules(sheet);
    if (!rules) { return null; }
    var live = ruleTexts(rules);
    var parsed;
    try {
      var fresh = new CSSStyleSheet();
      fresh.replaceSync(style.textContent); // @import is dropped here, so compare without it
      parsed = ruleTexts(fresh.cssRules);
    } catch (e) {
      return null;
    }
    var liveWithoutImports = live.filter(function (text) { return !/^@import/i.test(text); });
    if (liveWithoutImports.length === parsed.length && liveWithoutImports.every(function (text, i) {
      return text === parsed[i];
    })) {
      return null;
    }
    return live.join("\n");
  }

  function styleElementFor(ownerDocument, sheet, marker) {
    var rules = sheetRules(sheet);
    if (!rules || sheet.disabled) { return null; }
    var style = ownerDocument.createElement("style");
    style.setAttribute(marker, "");
    var media = sheet.media && sheet.media.mediaText;
    if (media) { style.setAttribute("media", media); }
    style.textContent = ruleTexts(rules).join("\n");
    return style;
  }

  /** Pixel width of an image file (its natural size at density 1), or 0. */
  function pixelWidth(url) {
    return new Promise(function (resolve) {
      var probe = new Image();
      probe.onload = function () { resolve(probe.naturalWidth); };
      probe.onerror = function () { resolve(0); };
      probe.src = url;
    });
  }

  /** img -> density of the candidate the browser chose, for images with srcset or in <picture>. */
  function chosenDensities() {
    var densities = new Map(), work = [];
    allRoots().forEach(function (root) {
      root.querySelectorAll("img").forEach(function (img) {
        var inPicture = img.parentElement && img.parentElement.localName === "picture";
        if (!img.currentSrc || !(img.hasAttribute("srcset") || inPicture) || !img.naturalWidth) { return; }
        work.push(pixelWidth(img.currentSrc).then(function (width) {
          var density = width ? width / img.naturalWidth : 1;
          densities.set(img, Math.round(density * 10000) / 10000);
        }));
      });
    });
    return Promise.all(work).then(function () { return densities; });
  }

  /**
   * use element -> the element it shows from an external SVG document. The agent's view is a
   * sandboxed document with an opaque origin, and browsers follow an external <use> only to a
   * same-origin document: so the referenced symbol is copied into the snapshot instead.
   */
  function externalUseTargets() {
    var targets = new Map(), documents = new Map();
    allRoots().forEach(function (root) {
      root.querySelectorAll("use").forEach(function (use) {
        var raw = hrefOf(use);
        var url = absolute(raw, use.baseURI);
        var fragment = raw && raw.indexOf("#") >= 0 ? decodeURIComponent(raw.slice(raw.indexOf("#") + 1)) : "";
        if (!url || !fragment) { return; }
        if (!documents.has(url)) {
          documents.set(url, readResource(url).then(function (result) {
            if (result.error) { return null; }
            var text = new TextDecoder("utf-8").decode(result.bytes);
            var parsed = new DOMParser().parseFromString(text, "image/svg+xml");
            return parsed.querySelector("parsererror") ? null : parsed;
          }).catch(function () { return null; }));
        }
        targets.set(use, documents.get(url).then(function (doc) {
          return doc ? doc.getElementById(fragment) : null;
        }));
      });
    });
    var resolved = new Map();
    return Promise.all(Array.from(targets.entries()).map(function (entry) {
      return entry[1].then(function (target) { if (target) { resolved.set(entry[0], target); } });
    })).then(function () { return resolved; });
  }

  /**
   * Where an absolutely positioned last child of <body> at left:0; top:0 sits in the document:
   * the origin the scroll anchor's offsets are measured from.
   */
  function anchorOrigin() {
    if (!document.body) { return { x: 0, y: 0 }; }
    var probe = document.createElement(SCROLL_TAG);
    probe[OUR_MARK] = true;
    probe.setAttribute("style", anchorStyle(0, 0));
    document.body.appendChild(probe);
    var rect = probe.getBoundingClientRect();
    probe.remove();
    return { x: rect.left + window.scrollX, y: rect.top + window.scrollY };
  }

  function anchorStyle(left, top) {
    return "all: initial !important; display: block !important; position: absolute !important; " +
      "left: " + left + "px !important; top: " + top + "px !important; width: 0 !important; " +
      "height: 0 !important; visibility: hidden !important; scroll-initial-target: nearest !important";
  }

  function escapeDoctype(text) { return String(text).replace(/"/g, "&quot;"); }

  function doctypeText() {
    var dt = document.doctype;
    if (!dt) { return ""; }
    var text = "<!DOCTYPE " + dt.name;
    if (dt.publicId) { text += ' PUBLIC "' + escapeDoctype(dt.publicId) + '"'; }
    if (dt.systemId) { text += (dt.publicId ? "" : " SYSTEM") + ' "' + escapeDoctype(dt.systemId) + '"'; }
    return text + ">";
  }

  function setFlag(el, name, on) {
    if (on) { el.setAttribute(name, ""); } else { el.removeAttribute(name); }
  }

  var VALUE_LESS_INPUTS = { checkbox: 1, radio: 1, file: 1, submit: 1, reset: 1, button: 1, image: 1, hidden: 1 };

  /**
   * Copies into ``copy`` (an inert clone of ``live``'s subtree) what the markup does not say:
   * form state, the chosen image candidates, CSSOM-only rules, open shadow roots. Returns the
   * shadow roots attached to the copy, for getHTML().
   */
  function carryState(live, copy, context) {
    var liveEls = live.querySelectorAll("*"), copyEls = copy.querySelectorAll("*");
    var removals = [];
    for (var i = 0; i < liveEls.length && i < copyEls.length; i++) {
      var el = liveEls[i], twin = copyEls[i];
      if (el[OUR_MARK]) { removals.push(twin); continue; }
      switch (el.localName) {
        case "input": {
          var type = (el.type || "text").toLowerCase();
          if (type === "checkbox" || type === "radio") {
            setFlag(twin, "checked", el.checked);
          } else if (type === "password") {
            // The agent never sees a password, only as many dots as the customer does.
            twin.setAttribute("value", el.value.replace(/[\s\S]/g, "*"));
          } else if (!VALUE_LESS_INPUTS[type]) {
            twin.setAttribute("value", el.value);
          }
          break;
        }
        case "textarea":
          // The parser drops one leading newline of a textarea: give it one to drop.
          twin.textContent = (el.value.charAt(0) === "\n" ? "\n" : "") + el.value;
          break;
        case "pre":
        case "listing": {
          var first = twin.firstChild;
          if (first && first.nodeType === 3 && first.data.charAt(0) === "\n") { first.data = "\n" + first.data; }
          break;
        }
        case "select": {
          var liveOptions = el.options, copyOptions = twin.querySelectorAll("option");
          for (var j = 0; j < liveOptions.length && j < copyOptions.length; j++) {
            setFlag(copyOptions[j], "selected", liveOptions[j].selected);
          }
          break;
        }
        case "img": {
          if (context.densities.has(el)) {
            twin.setAttribute("src", el.currentSrc);
            twin.removeAttribute("sizes");
            var density = context.densities.get(el);
            if (Math.abs(density - 1) < 0.001) {
              twin.removeAttribute("srcset");
            } else {
              twin.setAttribute("srcset", el.currentSrc + " " + density + "x");
            }
          }
          twin.removeAttribute("loading"); // the agent's view is one still: load what it shows
          break;
        }
        case "use":
          if (context.uses.has(el)) { inlineUseTarget(twin, context.uses.get(el), context); }
          break;
        case "video":
          context.videos = true;
          break;
        case "source":
          if (el.parentElement && el.parentElement.localName === "picture") { removals.push(twin); }
          break;
        case "style": {
          var text = cssomOnlyText(el);
          if (text !== null) { twin.textContent = text; }
          if (el.sheet && el.sheet.disabled) { twin.setAttribute("media", "not all"); }
          break;
        }
        case "link":
          if (el.sheet && el.sheet.disabled) { twin.setAttribute("media", "not all"); }
          break;
        default:
          break;
      }
      if ((el.scrollTop || el.scrollLeft) && el !== document.scrollingElement && el !== document.body) {
        scrollAnchorFor(el, twin);
      }
      if (el.shadowRoot && !el[OUR_MARK]) {
        copyShadowRoot(el.shadowRoot, twin, context);
      }
    }
    removals.forEach(function (node) { node.remove(); });
  }

  /**
   * The scroll position of an inner scroll container, the same way as the document's: an anchor
   * the agent's browser scrolls to. Only for a positioned container, which is the containing
   * block of an absolutely positioned child (left/top then count from its padding box, scrolled
   * to 0); making another one positioned could move its other descendants.
   */
  function scrollAnchorFor(el, twin) {
    if (getComputedStyle(el).position === "static") { return; }
    var anchor = twin.ownerDocument.createElement(SCROLL_TAG);
    anchor.setAttribute("aria-hidden", "true");
    anchor.setAttribute("style", anchorStyle(Math.round(el.scrollLeft), Math.round(el.scrollTop)));
    twin.appendChild(anchor);
  }

  /** Points ``use`` (in the copy) at a copy of ``target`` put in a <defs> of its own <svg>. */
  function inlineUseTarget(use, target, context) {
    var svg = use.closest("svg");
    if (!svg) { return; }
    var defs = svg.querySelector(":scope > defs[data-cobrowse-inlined]");
    if (!defs) {
      defs = svg.ownerDocument.createElementNS("http://www.w3.org/2000/svg", "defs");
      defs.setAttribute("data-cobrowse-inlined", "");
      svg.insertBefore(defs, svg.firstChild);
    }
    var id = "cobrowse-use-" + (++context.counter);
    var copy = svg.ownerDocument.importNode(target, true);
    copy.setAttribute("id", id);
    defs.appendChild(copy);
    use.removeAttributeNS("http://www.w3.org/1999/xlink", "href");
    use.setAttribute("href", "#" + id);
  }

  function copyShadowRoot(liveRoot, host, context) {
    var shadow;
    try {
      shadow = host.attachShadow({ mode: "open", delegatesFocus: liveRoot.delegatesFocus });
    } catch (e) {
      return; // not a valid shadow host in the copy
    }
    var holder = host.ownerDocument.createElement("div");
    Array.prototype.forEach.call(liveRoot.childNodes, function (child) {
      holder.appendChild(host.ownerDocument.importNode(child, true));
    });
    // Same structure as the live root's children, so the two element lists pair up.
    carryState(liveRoot, holder, context);
    while (holder.firstChild) { shadow.appendChild(holder.firstChild); }
    (liveRoot.adoptedStyleSheets || []).forEach(function (sheet) {
      var style = styleElementFor(host.ownerDocument, sheet, "data-cobrowse-adopted");
      if (style) { shadow.appendChild(style); }
    });
    context.shadowRoots.push(shadow);
  }

  /** The live DOM as HTML: what the customer sees, not what the server first sent. */
  function serializeDocument(prepared) {
    var inert = document.implementation.createHTMLDocument("");
    var root = inert.importNode(document.documentElement, true);
    var context = {
      densities: prepared.densities, uses: prepared.uses, shadowRoots: [], counter: 0, videos: false
    };
    carryState(document.documentElement, root, context);
    var shadowRoots = context.shadowRoots;

    var head = root.querySelector("head") || root;
    var body = root.querySelector("body") || root;
    if (context.videos) {
      // Where script cannot run, Chromium shows a video's controls even without the controls
      // attribute; the customer's page, which runs script, does not.
      var media = inert.createElement("style");
      media.setAttribute("data-cobrowse-media", "");
      media.textContent = "video:not([controls])::-webkit-media-controls { display: none !important; }";
      head.appendChild(media);
    }
    // Constructable sheets adopted by the document come after all of its own sheets.
    (document.adoptedStyleSheets || []).forEach(function (sheet) {
      var style = styleElementFor(inert, sheet, "data-cobrowse-adopted");
      if (style) { head.appendChild(style); }
    });

    // The scroll position, without script: an invisible anchor at the scrolled-to point that the
    // agent's browser scrolls to when it lays the page out (scroll-initial-target).
    var x = Math.round(window.scrollX), y = Math.round(window.scrollY);
    if ((x || y) && body !== root) {
      var origin = anchorOrigin();
      var anchor = inert.createElement(SCROLL_TAG);
      anchor.setAttribute("aria-hidden", "true");
      anchor.setAttribute("style", anchorStyle(Math.round(x - origin.x), Math.round(y - origin.y)));
      body.appendChild(anchor);
    }

    var html;
    var wrapper = inert.createElement("div");
    wrapper.appendChild(root);
    if (shadowRoots.length && typeof wrapper.getHTML === "function") {
      html = wrapper.getHTML({ shadowRoots: shadowRoots });
    } else {
      html = wrapper.innerHTML;
    }
    return doctypeText() + html;
  }

  function postSnapshot() {
    return Promise.all([chosenDensities(), externalUseTargets()]).then(function (prepared) {
      return postJson("snapshot", {
        url: location.href,
        html: serializeDocument({ densities: prepared[0], uses: prepared[1] }),
        charset: document.characterSet,
        viewport: { width: window.innerWidth, height: window.innerHeight },
        scroll: { x: Math.round(window.scrollX), y: Math.round(window.scrollY) }
      });
    }).then(function (response) { expectOk(response, "posting the page"); });
  }

  // --- the share flow ----------------------------------------------------------------------------

  function pageReady() {
    var loaded = document.readyState === "complete" ? Promise.resolve() : new Promise(function (resolve) {
      window.addEventListener("load", function () { resolve(); }, { once: true });
    });
    return loaded.then(function () {
      return document.fonts && document.fonts.ready ? document.fonts.ready : null;
    });
  }

  function syncOnce() {
    var opts = options();
    var mine = generation;
    function stillMine(value) {
      if (mine !== generation) { throw new Stopped(); }
      return value;
    }
    return pageReady().then(stillMine).then(function () {
      setState("syncing");
      return opts.enableStaticResourceService ? syncResources() : null;
    }).then(stillMine).then(postSnapshot).then(stillMine).then(function () {
      setState("sharing");
      return {
        session: state.session, code: state.code, view_token: state.viewToken,
        synced: state.synced, failed: state.failed
      };
    });
  }

  /** Runs a sync now, or once more after the one in progress. */
  function sync() {
    if (running) {
      again = true;
      return running;
    }
    var mine = generation;
    var current = syncOnce().then(function (result) {
      if (running === current) { running = null; }
      if (again && mine === generation) {
        again = false;
        return sync();
      }
      return result;
    }, function (error) {
      if (running === current) { running = null; }
      if (error instanceof Stopped || mine !== generation) {
        throw error; // stop() has already said what the state is
      }
      again = false;
      if (error instanceof SessionGone) {
        forgetSession();
        setState("stopped", error.message);
      } else {
        setState("error", error && error.message ? error.message : String(error));
      }
      throw error;
    });
    running = current;
    return current;
  }

  function share() {
    if (state.state === "sharing" || state.state === "syncing") {
      return sync();
    }
    if (starting) {
      return starting; // a second click while the session is being created
    }
    setState("starting");
    var mine = generation;
    var ready = state.uploadToken ? Promise.resolve() : createSession(options());
    var current = ready.then(function () {
      if (starting === current) { starting = null; }
      if (mine !== generation) {
        // stop() came while the session was being made: end it at once.
        return stop().then(function () { throw new Stopped(); });
      }
      return sync();
    }, function (error) {
      if (starting === current) { starting = null; }
      if (mine === generation) {
        setState("error", error && error.message ? error.message : String(error));
      }
      throw error;
    });
    starting = current;
    return current;
  }

  function stop() {
    generation++;
    running = null; // a sync in progress finds out, and keeps its hands off the state
    again = false;
    starting = null;
    clearTimeout(updateTimer);
    var token = state.uploadToken;
    var ended = token
      ? api("sessions/current", { method: "DELETE" }).catch(function () { /* gone already */ })
      : Promise.resolve();
    return ended.then(function () {
      forgetSession();
      state.synced = state.total = state.failed = 0;
      setState("stopped");
    });
  }

  function status() {
    return {
      state: state.state, synced: state.synced, total: state.total, failed: state.failed,
      code: state.code, error: state.error
    };
  }

  // --- following the page while sharing ------------------------------------------------------------

  function scheduleUpdate() {
    if (state.state !== "sharing" && state.state !== "syncing") { return; }
    clearTimeout(updateTimer);
    updateTimer = setTimeout(function () {
      sync().catch(function () { /* shown in the widget */ });
    }, UPDATE_DELAY);
  }

  function ours(node) {
    return node && (node[OUR_MARK] || (node.parentNode && node.parentNode[OUR_MARK]));
  }

  function watchPage() {
    if (typeof MutationObserver !== "undefined") {
      new MutationObserver(function (records) {
        var relevant = records.some(function (record) {
          if (ours(record.target)) { return false; }
          var nodes = Array.prototype.slice.call(record.addedNodes).concat(
            Array.prototype.slice.call(record.removedNodes));
          return !nodes.length || !nodes.every(ours);
        });
        if (relevant) { scheduleUpdate(); }
      }).observe(document.documentElement, {
        subtree: true, childList: true, attributes: true, characterData: true
      });
    }
    ["scroll", "resize"].forEach(function (name) {
      window.addEventListener(name, scheduleUpdate, { passive: true });
    });
    ["input", "change"].forEach(function (name) {
      document.addEventListener(name, scheduleUpdate, true);
    });
  }

  // --- the widget --------------------------------------------------------------------------------

  var widget = null;

  var WIDGET_CSS = [
    ":host { all: initial !important; position: fixed !important; right: 16px !important;",
    "  bottom: 16px !important; z-index: 2147483647 !important; display: block !important; }",
    ".box { font: 13px/1.4 system-ui, sans-serif; color: #1f2933; background: #ffffff;",
    "  border: 1px solid #c8d0dc; border-radius: 8px; box-shadow: 0 2px 8px rgba(0,0,0,.15);",
    "  padding: 8px 10px; max-width: 260px; }",
    "button { font: inherit; cursor: pointer; border-radius: 6px; padding: 4px 10px;",
    "  border: 1px solid #1e5aa0; background: #1e5aa0; color: #ffffff; }",
    "button.secondary { background: #ffffff; color: #1e5aa0; }",
    ".code { font: 600 18px/1.3 ui-monospace, monospace; letter-spacing: 1px; }",
    ".line { margin: 2px 0; }",
    ".error { color: #b00020; }",
    "[hidden] { display: none !important; }"
  ].join("\n");

  function buildWidget() {
    var host = document.createElement(WIDGET_TAG);
    host[OUR_MARK] = true;
    host.setAttribute("data-cobrowse-widget", "");
    var shadow = host.attachShadow({ mode: "open" });
    shadow.innerHTML =
      "<style>" + WIDGET_CSS + "</style>" +
      '<div class="box" role="region" aria-label="Co-browse">' +
      '<button type="button" class="share">Share my screen</button>' +
      '<div class="sharing" hidden>' +
      '<div class="line">Your code for the agent:</div>' +
      '<div class="line code" aria-live="polite"></div>' +
      '<div class="line progress" aria-live="polite"></div>' +
      '<button type="button" class="secondary stop">Stop sharing</button>' +
      "</div>" +
      '<div class="line error" role="alert" hidden></div>' +
      "</div>";
    shadow.querySelector(".share").addEventListener("click", function () {
      share().catch(function () { /* shown in the widget */ });
    });
    shadow.querySelector(".stop").addEventListener("click", function () { stop(); });
    // After <body>, not in it: the page's own structure (and its :last-child rules) stay as they are.
    document.documentElement.appendChild(host);
    widget = shadow;
    render();
  }

  function groupCode(code) {
    return code ? code.replace(/^(\d{3})(\d{3})(\d{3})$/, "$1 $2 $3") : "";
  }

  function render() {
    if (!widget) { return; }
    var active = state.code && state.state !== "stopped" && state.state !== "idle";
    widget.querySelector(".share").hidden = Boolean(active);
    widget.querySelector(".share").disabled = state.state === "starting";
    widget.querySelector(".sharing").hidden = !active;
    widget.querySelector(".code").textContent = groupCode(state.code);
    var progress = "";
    if (state.state === "starting") {
      progress = "Starting...";
    } else if (state.total) {
      progress = state.synced + " of " + state.total + " resources synced";
      if (state.failed) { progress += " (" + state.failed + " left to the server)"; }
    } else if (state.state === "syncing") {
      progress = "Sharing the page...";
    } else if (state.state === "sharing") {
      progress = "The agent can see this page.";
    }
    widget.querySelector(".progress").textContent = progress;
    var error = widget.querySelector(".error");
    error.hidden = !state.error;
    error.textContent = state.error || "";
  }

  // --- start ---------------------------------------------------------------------------------------

  window.cobrowse = {
    __cobrowse: true,
    share: share,
    stop: stop,
    status: status
  };

  function start() {
    if (options().ui) { buildWidget(); }
    watchPage();
    var saved = loadSession();
    if (saved) {
      // A new page of a site being shared: carry on with the same session.
      state.session = saved.session;
      state.code = saved.code;
      state.uploadToken = saved.upload_token;
      state.viewToken = saved.view_token;
      setState("syncing");
      sync().catch(function () { /* shown in the widget */ });
    }
  }

  if (document.documentElement) {
    start();
  } else {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  }
})();
