// The scim-edge console: shows _console/overview and /healthz, and runs the vault's
// actions (sync, reconcile, retry). The SCIM key lives only in this tab's sessionStorage
// and is sent only as `Authorization: Bearer` to this origin. Everything the service
// answers is put on the page with textContent, never parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // The page is {base}/_console; the organization's routes are under {base}, and
  // /healthz beside /v2/{org} or /scim/v2/{org} (below any prefix a proxy adds).
  const base = location.pathname.replace(/\/_console\/?$/, "");
  const root = base.replace(/\/(?:scim\/)?v2\/[^/]+$/i, "");
  const org = decodeURIComponent(base.slice(base.lastIndexOf("/") + 1));

  // One slot per organization, so a key is never sent to another organization's routes.
  const slot = "scim-edge key " + base;
  const session = {
    get: () => sessionStorage.getItem(slot),
    set: (k) => sessionStorage.setItem(slot, k),
    forget: () => sessionStorage.removeItem(slot),
  };

  class Failure extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  // Never follow a redirect: the key must not travel anywhere but here.
  const fetchInit = { cache: "no-store", credentials: "omit", redirect: "error", referrerPolicy: "no-referrer" };

  async function send(url, init) {
    try {
      return await fetch(url, { ...fetchInit, ...init });
    } catch (e) {
      throw new Failure("The service did not answer: " + e.message, 0);
    }
  }

  // The JSON of a 2xx answer; otherwise a Failure with the SCIM error's detail.
  async function answer(r) {
    const data = await r.json().catch(() => null);
    if (r.ok) return data;
    const detail = data && typeof data.detail === "string" ? data.detail : r.statusText || "no detail given";
    throw new Failure(`${r.status}: ${detail}`, r.status);
  }

  async function api(method, path, body) {
    const key = session.get();
    if (!key) throw new Failure("No key: enter the organization's SCIM key.", 401);
    const headers = { Authorization: "Bearer " + key, Accept: "application/scim+json, application/json" };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/scim+json";
      init.body = JSON.stringify(body);
    }
    return answer(await send(base + path, init));
  }

  // The probe needs no key, and gets none.
  async function health() {
    try {
      const r = await send(root + "/healthz", {});
      const data = await r.json().catch(() => null);
      const status = (data && data.status) || `HTTP ${r.status}`;
      return { ok: r.ok, text: data && data.reason ? `${status}: ${data.reason}` : status };
    } catch (e) {
      return { ok: false, text: e.message };
    }
  }

  // An element holding text, nodes, or arrays of them.
  function h(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    e.append(...kids.flat(Infinity).map((k) => (k instanceof Node ? k : String(k))));
    return e;
  }

  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  function ago(d) {
    const s = Math.round((d.getTime() - Date.now()) / 1000);
    for (const [unit, n] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
      if (Math.abs(s) >= n) return relative.format(Math.round(s / n), unit);
    }
    return relative.format(s, "second");
  }

  // An RFC 3339 time as a local one (today's without the date), with how long ago;
  // `none` when there is none.
  function when(t, none = "never") {
    if (!t) return none;
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return t;
    const today = d.toDateString() === new Date().toDateString();
    const e = h("time", "", `${today ? d.toLocaleTimeString() : d.toLocaleString()} (${ago(d)})`);
    e.dateTime = t;
    e.title = t;
    return e;
  }

  // Facts whose values are sentences: they take a whole row.
  const wide = new Set(["pause", "lastError", "agent"]);

  // Rows of [name, label, value, tone] as a definition list; `name` is for tests and
  // styles only.
  function facts(dl, rows) {
    dl.replaceChildren(
      ...rows.map(([name, label, value, tone]) => {
        const dd = h("dd", tone, value);
        dd.dataset.fact = name;
        return h("div", wide.has(name) ? "wide" : "", h("dt", "", label), dd);
      }),
    );
  }

  // Each item as a list entry, or one entry saying there is nothing.
  function list(el, items, empty, entry) {
    if (!items || items.length === 0) {
      el.replaceChildren(h("li", "empty", empty));
    } else {
      el.replaceChildren(...items.map((x) => h("li", "", entry(x))));
    }
  }

  function entryName(e) {
    if (e === "import") return "The whole import";
    const [kind, id] = [e.slice(0, 2), e.slice(2)];
    return kind === "u:" ? "User " + id : kind === "g:" ? "Group " + id : e;
  }

  function render(o, hz) {
    const u = o.users || {};
    $("org").textContent = "Organization " + o.organization;
    facts($("summary"), [
      ["health", "Health", hz.text, hz.ok ? "good" : "bad"],
      ["policy", "Policy", o.policy],
      ["active", "Active users", u.active],
      ["inactive", "Inactive users", u.inactive],
      ["groups", "Groups", o.groups],
    ]);
    const v = o.vault;
    $("no-vault").hidden = v != null;
    $("vault").hidden = v == null;
    if (v) renderVault(v);
  }

  // The service writes its last error as "<RFC 3339 time>: <reason>".
  function reason(text) {
    const m = /^(\d{4}-\d\d-\d\dT[^ ]+): (.*)$/s.exec(text);
    return m ? [m[2], " (", when(m[1]), ")"] : text;
  }

  function renderVault(v) {
    const bitwarden = v.kind !== "vaultwarden";
    const tok = v.token;
    const paused = v.pausedUntil;
    const rows = [
      ["kind", "Kind", bitwarden ? "Bitwarden" : "Vaultwarden"],
      ["origin", "API origin", v.vault],
      [
        "token",
        "Last token request",
        !tok ? "none yet" : tok.ok ? ["succeeded ", when(tok.at)] : ["failed ", when(tok.at), ": " + (tok.error || "no reason given")],
        tok ? (tok.ok ? "good" : "bad") : "",
      ],
      ["lastSync", "Last sync", when(v.lastSync)],
      ["lastSent", "Last change sent", when(v.lastSent)],
      ["lastReconcile", "Last reconcile", when(v.lastReconcile)],
      ["backlog", "Backlog", `${v.backlog} waiting`, v.backlog ? "warn" : ""],
      ["pause", "Paused", paused ? ["until ", when(paused), v.lastError ? [": ", reason(v.lastError)] : ""] : "no", paused ? "bad" : ""],
    ];
    if (!paused && v.lastError) rows.push(["lastError", "Last error", reason(v.lastError), "warn"]);
    const a = v.agent;
    if (a) {
      rows.push(["agent", "Confirm agent", ["last pass ", when(a.at), `: ${a.confirmed} confirmed, ${a.skipped} skipped, ${a.failed} failed`]]);
    }
    facts($("vault-facts"), rows);

    list($("statuses"), Object.entries(v.users || {}), "No users yet.", ([status, n]) => [h("strong", "", n), " " + status]);

    list($("parked"), v.parked, "Nothing is parked.", (p) => {
      const retry = h("button", "", "Retry");
      retry.type = "button";
      retry.dataset.entry = p.entry;
      const who = p.name ? `${p.name} (${entryName(p.entry)})` : entryName(p.entry);
      retry.setAttribute("aria-label", "Retry " + who);
      retry.addEventListener("click", () => act($("retry-out"), async () => {
        const r = await api("POST", "/_vault/retry", { entry: p.entry });
        return [h("p", "", `Retried ${entryName(r.retried)}.`), report(r.sync)];
      }));
      return [h("span", "what", who), h("span", "why", p.error || "(the vault gave no message)"), retry];
    });

    // Only Bitwarden's members are listed and compared; a Vaultwarden reconcile sends
    // the import again, members the vault refused included.
    list($("drift"), v.drift, bitwarden ? "No drift found by the last reconcile." : "Vaultwarden is not listed: drift is not checked.", (d) => d);
    $("reconcile-hint").textContent = bitwarden
      ? "Lists the vault, reports drift and, when healing is on, heals it."
      : "Sends the import again, with the members the vault refused.";

    list($("queue"), v.confirmQueue, "No one is waiting for Confirm.", (q) => [
      h("span", "what", q.email || "User " + q.id),
      h("span", "muted", " accepted ", when(q.since, "at a time not recorded")),
    ]);

    list($("problems"), v.problems, "No recent problems.", (p) => [
      h("span", "muted", when(p.at, "")),
      " ",
      h("span", "tag", p.kind),
      " ",
      h("span", "why", p.message),
    ]);
  }

  // A sync's answer, in words.
  function report(r) {
    if (!r) return [];
    const out = [
      h("p", "", `Sent ${r.sent}, invited ${r.invited}; ${r.pending} waiting, ${r.parked} parked; ` +
        `${r.calls} vault call(s), ${r.limited} rate-limited.`),
    ];
    if (r.drift && r.drift.length) out.push(h("ul", "", r.drift.map((d) => h("li", "", "Drift: " + d))));
    if (r.errors && r.errors.length) out.push(h("ul", "bad", r.errors.map((e) => h("li", "", e))));
    return out;
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = false;
  }

  function hideError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  const shown = ["summary", "vault-facts", "statuses", "parked", "drift", "queue", "problems", "sync-out", "retry-out", "reconcile-out", "updated"];

  function showLogin() {
    for (const id of shown) $(id).replaceChildren();
    $("console").hidden = true;
    $("login").hidden = false;
    document.body.dataset.state = "login";
    $("key").focus();
  }

  // A 401 means the key is wrong (or was rotated away): it is dropped, and the
  // service's own words are shown above the key field.
  function signedOut(e) {
    if (e.status !== 401) return false;
    session.forget();
    showLogin();
    const refused = e.message.startsWith("401: ");
    showError(refused ? "The service refused the key (401): " + e.message.slice(5) : e.message);
    return true;
  }

  let loads = 0;

  async function refresh() {
    $("updated").textContent = "Refreshing…";
    try {
      const [o, hz] = await Promise.all([api("GET", "/_console/overview"), health()]);
      render(o, hz);
      hideError();
      $("login").hidden = true;
      $("console").hidden = false;
      $("updated").textContent = "Updated at " + new Date().toLocaleTimeString();
      document.body.dataset.state = "ready";
    } catch (e) {
      if (!signedOut(e)) {
        showError(e.message);
        $("updated").textContent = "";
        document.body.dataset.state = "error";
      }
    }
    // Lets a test (or a person) tell one refresh from the next.
    document.body.dataset.loads = String(++loads);
  }

  // One action at a time; its answer goes in `out`, then everything is read again.
  let running = false;

  async function act(out, run) {
    if (running) return;
    running = true;
    $("console").setAttribute("aria-busy", "true");
    out.replaceChildren(h("p", "muted", "Working…"));
    let ok = true;
    try {
      out.replaceChildren(...(await run()).flat(Infinity));
    } catch (e) {
      ok = !signedOut(e);
      if (ok) out.replaceChildren(h("p", "bad", e.message));
    }
    if (ok) await refresh();
    $("console").removeAttribute("aria-busy");
    running = false;
    // The button pressed may be gone with the list it was in: keep the keyboard nearby.
    if (ok && (document.activeElement === document.body || !document.activeElement)) out.focus();
  }

  // Refresh is an action too, so it never overlaps one.
  async function reload() {
    if (running) return;
    running = true;
    await refresh();
    running = false;
  }

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = $("key");
    const key = input.value.trim();
    input.value = "";
    if (!key) return;
    hideError();
    session.set(key);
    await refresh();
    if (!$("console").hidden) $("refresh").focus();
  });

  $("refresh").addEventListener("click", reload);
  $("forget").addEventListener("click", () => {
    session.forget();
    hideError();
    showLogin();
  });
  $("sync").addEventListener("click", () => act($("sync-out"), async () => report(await api("POST", "/_vault/sync"))));
  $("reconcile").addEventListener("click", () =>
    act($("reconcile-out"), async () => report(await api("POST", "/_vault/sync?reconcile=1"))));

  $("org").textContent = "Organization " + org;
  $("loading").hidden = true;
  if (session.get()) refresh();
  else showLogin();
})();
