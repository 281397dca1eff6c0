/* CodecShift dashboard: live regions, API buttons, bulk actions. No framework, no inline code
   (the Content-Security-Policy allows scripts from this origin only).

   Live regions: an element with data-live="URL" is refreshed by fetching URL (the same page with
   partial=1) with the last ETag; a 304 costs almost nothing, a 200 replaces the region's content.
   The server sets the next interval in data-next-interval (faster while something runs). Polling
   stops while the tab is hidden and resumes at once when it is shown again. */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrfToken = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var regions = [];

  /* API addresses come from the page (url_for), so the dashboard works under a sub-path
     behind a proxy (X-Forwarded-Prefix); none is written here. */
  function apiUrl(name) {
    return document.body.getAttribute("data-" + name + "-url") || "";
  }

  function toast(message, kind) {
    var box = document.getElementById("toasts");
    if (!box) { return; }
    var item = document.createElement("div");
    item.className = "toast toast-" + (kind || "ok");
    item.setAttribute("role", kind === "error" ? "alert" : "status");
    item.textContent = message;
    box.appendChild(item);
    window.setTimeout(function () { item.remove(); }, kind === "error" ? 9000 : 4000);
  }

  /* Call the JSON API; resolves to {ok, status, data}. Errors carry {"error": {code, message, field}}. */
  function api(method, url, body) {
    var headers = {"Accept": "application/json"};
    var options = {method: method, headers: headers, credentials: "same-origin", cache: "no-store"};
    if (method !== "GET") { headers["X-CSRFToken"] = csrfToken; }
    if (body !== undefined && body !== null) {
      headers["Content-Type"] = "application/json";
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    return fetch(url, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        return {ok: response.ok, status: response.status, data: data};
      });
    });
  }

  function errorText(result) {
    if (result.data && result.data.error) { return result.data.error.message; }
    return "The dashboard answered " + result.status + ".";
  }

  /* -- live regions ------------------------------------------------------------------------ */

  function captureState(root) {
    var state = {checked: [], open: [], scroll: []};
    root.querySelectorAll('input[type="checkbox"][name="ids"]:checked').forEach(function (box) {
      state.checked.push(box.value);
    });
    root.querySelectorAll("details[open][id]").forEach(function (d) { state.open.push(d.id); });
    root.querySelectorAll(".table-wrap").forEach(function (w) { state.scroll.push(w.scrollLeft); });
    return state;
  }

  function restoreState(root, state) {
    root.querySelectorAll('input[type="checkbox"][name="ids"]').forEach(function (box) {
      box.checked = state.checked.indexOf(box.value) !== -1;
    });
    state.open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d && root.contains(d)) { d.open = true; }
    });
    root.querySelectorAll(".table-wrap").forEach(function (w, i) {
      if (state.scroll[i]) { w.scrollLeft = state.scroll[i]; }
    });
  }

  function Region(element) {
    this.element = element;
    this.url = element.getAttribute("data-live");
    this.interval = parseInt(element.getAttribute("data-interval"), 10) || 5000;
    this.etag = null;
    this.timer = null;
    this.failures = 0;
    this.busy = false;
  }

  Region.prototype.schedule = function (delay) {
    var self = this;
    window.clearTimeout(this.timer);
    if (document.hidden) { return; }
    this.timer = window.setTimeout(function () { self.poll(); }, delay);
  };

  Region.prototype.poll = function () {
    var self = this;
    if (this.busy) { return; }
    this.busy = true;
    var headers = {"X-Requested-With": "fetch"};
    if (this.etag) { headers["If-None-Match"] = this.etag; }
    fetch(this.url, {headers: headers, credentials: "same-origin", cache: "no-store"}).then(function (response) {
      if (response.redirected || response.status === 401 || response.status === 403) {
        window.location.reload();  // signed out: the page takes the user to sign in
        return null;
      }
      if (response.status === 304) { return null; }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      self.etag = response.headers.get("ETag");
      return response.text();
    }).then(function (html) {
      self.failures = 0;
      if (html !== null && html !== undefined) { self.swap(html); }
      self.element.classList.remove("stale");
    }).catch(function () {
      self.failures += 1;
      self.element.classList.add("stale");
    }).then(function () {
      self.busy = false;
      var backoff = Math.min(30000, self.interval * Math.pow(2, self.failures));
      self.schedule(self.failures ? backoff : self.interval);
    });
  };

  Region.prototype.swap = function (html) {
    var state = captureState(this.element);
    this.element.innerHTML = html;
    restoreState(this.element, state);
    var root = this.element.querySelector("[data-next-interval]");
    if (root) { this.interval = parseInt(root.getAttribute("data-next-interval"), 10) || this.interval; }
    updateBulkBars();
    document.dispatchEvent(new CustomEvent("cs:refreshed", {detail: {region: this.element}}));
  };

  function refreshAll() {
    regions.forEach(function (region) { region.schedule(0); });
  }

  /* -- buttons calling the API ------------------------------------------------------------- */

  function onApiButton(button) {
    var message = button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { return; }
    var body = button.getAttribute("data-body");
    button.disabled = true;
    api(button.getAttribute("data-method") || "POST", button.getAttribute("data-api"), body || undefined)
      .then(function (result) {
        if (result.ok) {
          toast(button.getAttribute("data-done") || describe(result), "ok");
        } else {
          toast(errorText(result), "error");
        }
        button.disabled = false;
        refreshAll();
      }, function () {
        button.disabled = false;
        toast("The dashboard could not be reached.", "error");
      });
  }

  function describe(result) {
    var data = result.data || {};
    if (data.action && data.changed) {
      var n = data.changed.length;
      return data.action.replace(/_/g, " ") + ": " + n + " job" + (n === 1 ? "" : "s") + " changed";
    }
    if (data.jobs_created !== undefined) { return data.jobs_created + " health-check jobs queued."; }
    if (data.files_seen !== undefined) { return data.created === false ? "A scan is already running." : "Scan started."; }
    if (data.paused !== undefined) { return data.paused ? "Queue paused." : "Queue resumed."; }
    if (result.status === 202) { return "Started."; }
    return "Done.";
  }

  /* -- selection and bulk actions ---------------------------------------------------------- */

  function selectedIds(container) {
    var ids = [];
    if (!container) { return ids; }
    container.querySelectorAll('input[type="checkbox"][name="ids"]:checked').forEach(function (box) {
      ids.push(parseInt(box.value, 10));
    });
    return ids;
  }

  function updateBulkBars() {
    document.querySelectorAll("[data-bulk-for]").forEach(function (bar) {
      var container = document.getElementById(bar.getAttribute("data-bulk-for"));
      var count = selectedIds(container).length;
      var label = bar.querySelector("[data-selected-count]");
      if (label) { label.textContent = String(count); }
      bar.querySelectorAll("[data-bulk-action]").forEach(function (b) { b.disabled = count === 0; });
      var all = bar.querySelector("[data-select-all-for]");
      var boxes = container ? container.querySelectorAll('input[name="ids"]') : [];
      if (all) { all.checked = boxes.length > 0 && count === boxes.length; }
    });
  }

  function onBulkAction(button) {
    var bar = button.closest("[data-bulk-for]");
    var container = document.getElementById(bar.getAttribute("data-bulk-for"));
    var ids = selectedIds(container);
    if (!ids.length) { return; }
    var message = button.getAttribute("data-confirm");
    if (message && !window.confirm(message.replace("the selected", ids.length + " selected"))) { return; }
    button.disabled = true;
    api("POST", apiUrl("job-actions"), {action: button.getAttribute("data-bulk-action"), ids: ids})
      .then(function (result) {
        if (result.ok) {
          var skipped = ids.length - result.data.changed.length;
          toast(describe(result) + (skipped ? "; " + skipped + " did not apply" : ""), "ok");
          container.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = false; });
        } else {
          toast(errorText(result), "error");
        }
        updateBulkBars();
        refreshAll();
      });
  }

  // Acting on every job matching the filter runs on the control worker: the API answers
  // 202 with an operation, polled here until it is done.
  function onFilterAction(button) {
    if (!window.confirm(button.getAttribute("data-confirm"))) { return; }
    button.disabled = true;
    var body = {action: button.getAttribute("data-filter-action"), filter: JSON.parse(button.getAttribute("data-filter"))};
    api("POST", apiUrl("job-actions"), body).then(function (result) {
      if (!result.ok) { toast(errorText(result), "error"); button.disabled = false; return; }
      var id = result.data.operation.id;
      toast("Started on the control worker (operation " + id + ")", "ok");
      var poll = function () {
        api("GET", apiUrl("operations") + encodeURIComponent(id)).then(function (answer) {
          if (answer.ok && (answer.data.status === "done" || answer.data.status === "failed")) {
            toast(answer.data.action + ": " + answer.data.changed + " of " + answer.data.total + " jobs changed",
                  answer.data.status === "done" ? "ok" : "error");
            button.disabled = false;
            refreshAll();
          } else {
            window.setTimeout(poll, 1000);
          }
        });
      };
      window.setTimeout(poll, 500);
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var filterButton = target.closest("[data-filter-action]");
    if (filterButton) { event.preventDefault(); onFilterAction(filterButton); return; }
    var apiButton = target.closest("[data-api]");
    if (apiButton) { event.preventDefault(); onApiButton(apiButton); return; }
    var bulk = target.closest("[data-bulk-action]");
    if (bulk) { event.preventDefault(); onBulkAction(bulk); return; }
    var confirmSubmit = target.closest('button[type="submit"][data-confirm]');
    if (confirmSubmit && !window.confirm(confirmSubmit.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-all]")) {
      var table = target.closest("table");
      table.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = target.checked; });
    } else if (target.matches("[data-select-all-for]")) {
      var list = document.getElementById(target.getAttribute("data-select-all-for"));
      list.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = target.checked; });
    }
    if (target.matches('input[name="ids"], [data-select-all], [data-select-all-for]')) { updateBulkBars(); }
  });

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      regions.forEach(function (region) { window.clearTimeout(region.timer); });
    } else {
      refreshAll();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(function (element) {
      var region = new Region(element);
      regions.push(region);
      region.schedule(region.interval);
    });
    updateBulkBars();
  });

  window.CodecShift = {api: api, toast: toast, refresh: refreshAll};
}());
