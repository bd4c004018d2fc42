// Concord console: a single page that reads the coordinator's JSON API.
// Views: #/ (overview), #/transactions?state=&participant= (list),
// #/tx/ID (one transaction's timeline and actions).
"use strict";

const API = ""; // same origin as the console
let timer = null;
let lastOverview = null; // {at, committed, aborted} of the previous poll
let participants = [];

// h builds an element: h("td", {class: "num"}, "12", child, ...). Text is
// always set as text, never parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function badge(text, kind) {
  return h("span", {class: "badge b-" + (kind || text)}, text);
}

// The bearer token the operator signed in with, kept in this tab's session
// storage (gone when the tab closes) and sent only to this origin. Without
// one, the browser's client certificate (if any) authenticates.
const TOKEN_KEY = "concord-token";
function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; } }
function setToken(t) {
  try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage off: not kept */ }
  document.getElementById("signout").hidden = !t;
}

// api fetches a path of the coordinator's API. A failure is an Error with
// status (0 when nothing answered) and unauthenticated set for a 401.
async function api(path, opts) {
  opts = Object.assign({}, opts || {});
  const headers = Object.assign({"Accept": "application/json"}, opts.headers || {});
  const t = token();
  if (t) headers["Authorization"] = "Bearer " + t;
  opts.headers = headers;
  opts.credentials = "same-origin";
  let res;
  try {
    res = await fetch(API + path, opts);
  } catch (e) {
    const err = new Error(e.message);
    err.status = 0; // no answer at all
    throw err;
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error : res.status + " " + res.statusText;
    const err = new Error(msg);
    err.status = res.status;
    err.unauthenticated = res.status === 401;
    throw err;
  }
  return body;
}

// showSignIn shows the sign-in form with why it is shown.
function showSignIn(why) {
  document.getElementById("signin").hidden = false;
  document.getElementById("view").hidden = true;
  document.getElementById("signin-why").textContent = why;
  document.getElementById("signin-token").focus();
}

function hideSignIn() {
  document.getElementById("signin").hidden = true;
  document.getElementById("view").hidden = false;
}

async function signIn(ev) {
  ev.preventDefault();
  const input = document.getElementById("signin-token");
  const t = input.value.trim();
  if (!t) return;
  setToken(t);
  input.value = "";
  try {
    await api("/v1/overview");
  } catch (e) {
    if (e.unauthenticated) {
      setToken("");
      showSignIn("That token was not accepted: " + e.message);
      return;
    }
  }
  hideSignIn();
  refresh();
}

function signOut() {
  setToken("");
  showSignIn("Signed out. Sign in with a token, or use a client certificate.");
  setStatus(false, "not authenticated: signed out");
}

function ago(iso, now) {
  if (!iso) return "never";
  const s = Math.max(0, ((now ? new Date(now) : new Date()) - new Date(iso)) / 1000);
  if (s < 1) return "just now";
  if (s < 90) return Math.round(s) + "s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function inTime(iso) {
  const s = (new Date(iso) - new Date()) / 1000;
  if (s <= 1) return "due now";
  if (s < 90) return "in " + Math.round(s) + "s";
  if (s < 5400) return "in " + Math.round(s / 60) + " min";
  return "in " + Math.round(s / 3600) + " h";
}

function clock(iso) {
  const d = new Date(iso);
  return d.toISOString().slice(11, 23) + " UTC";
}

function setStatus(ok, text) {
  const el = document.getElementById("refresh-status");
  el.textContent = text;
  el.className = ok ? "status" : "status stale";
}

function banner(text) {
  const el = document.getElementById("banner");
  el.hidden = !text;
  el.textContent = text || "";
}

function route() {
  const hash = location.hash || "#/";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  if (path.startsWith("/tx/")) return {view: "tx", id: decodeURIComponent(path.slice(4)), params};
  if (path.startsWith("/transactions")) {
    document.getElementById("nav-transactions").classList.add("active");
    return {view: "list", params};
  }
  document.getElementById("nav-overview").classList.add("active");
  return {view: "overview", params};
}

async function refresh() {
  clearTimeout(timer);
  const r = route();
  const loaders = {overview: [loadOverview, 2000], list: [loadList, 3000], tx: [loadTx, 1000]};
  const [load, every] = loaders[r.view];
  try {
    await load(r);
    hideSignIn();
    setStatus(true, "updated " + new Date().toISOString().slice(11, 19) + " UTC · every " + every / 1000 + "s");
  } catch (e) {
    if (e.unauthenticated) {
      // The coordinator answered: it wants credentials. Polling waits for
      // the sign-in.
      setStatus(false, "not authenticated: sign in");
      showSignIn(token() ? "The coordinator no longer accepts the token: " + e.message : "The coordinator asks who you are (" + e.message + ").");
      return;
    }
    setStatus(false, e.status === 0 ? "coordinator not answering: " + e.message : "coordinator error " + e.status + ": " + e.message);
  }
  timer = setTimeout(refresh, every);
}

function render(...nodes) {
  const view = document.getElementById("view");
  view.replaceChildren(...nodes.flat(Infinity).filter(n => n !== null && n !== undefined && n !== false));
}

function tile(label, value, sub, alert) {
  return h("div", {class: "tile" + (alert ? " alert" : "")},
    h("div", {class: "label"}, label), h("div", {class: "value"}, value), sub ? h("div", {class: "sub"}, sub) : null);
}

async function loadOverview() {
  const o = await api("/v1/overview");
  participants = o.participants.map(p => p.name);
  banner(o.halted ? "The coordinator has stopped working: " + o.halted : "");
  const at = new Date(o.now).getTime();
  let cRate = "–", aRate = "–";
  if (lastOverview && at > lastOverview.at) {
    const dt = (at - lastOverview.at) / 1000;
    cRate = ((o.committed - lastOverview.committed) / dt).toFixed(1);
    aRate = ((o.aborted - lastOverview.aborted) / dt).toFixed(1);
  }
  lastOverview = {at, committed: o.committed, aborted: o.aborted};
  const failing = o.participants.filter(p => p.state === "failing");
  const pending = await api("/v1/transactions?state=pending&limit=20");
  render(
    h("h1", {}, "Overview"),
    h("div", {class: "tiles", id: "tiles"},
      tile("Committed / s", cRate, o.committed + " committed since start"),
      tile("Aborted / s", aRate, o.aborted + " aborted since start"),
      tile("In flight", o.in_flight, "preparing or awaiting acks"),
      tile("Awaiting acknowledgement", o.awaiting_ack, "decided, a participant has not confirmed", o.awaiting_ack > 0),
      tile("Participants failing", failing.length + " / " + o.participants.length,
        failing.length ? failing.map(p => p.name).join(", ") : "all answering", failing.length > 0),
      tile("Log segments", o.log_segments, o.log_syncs + " fsyncs; " + o.compactions + " compaction passes deleted " + o.log_segments_removed + " segments")),
    h("h2", {}, "Participants"),
    h("table", {id: "participants"},
      h("thead", {}, h("tr", {}, ["Participant", "Traffic", "Probe", "Last success", "Last error", "Errors in a row", "Requests", "Errors", "Pending acks"].map(t => h("th", {}, t)))),
      h("tbody", {}, o.participants.map(p => h("tr", {"data-participant": p.name},
        h("td", {}, h("a", {href: "#/transactions?state=all&participant=" + encodeURIComponent(p.name)}, p.name)),
        h("td", {class: "traffic"}, badge(p.state)),
        h("td", {class: "probe" + (p.probe === "failing" ? " err" : "")}, probeCell(p, o.now)),
        h("td", {}, ago(p.last_ok, o.now)),
        h("td", {class: p.state === "failing" ? "err" : ""}, p.last_error ? ago(p.last_error_at, o.now) + ": " + p.last_error : "–"),
        h("td", {class: "num"}, p.consecutive_errors),
        h("td", {class: "num"}, p.requests),
        h("td", {class: "num"}, p.errors),
        h("td", {class: "num"}, p.pending_acks))))),
    h("h2", {}, "Needs attention: transactions not finished"),
    pending.transactions.length ? txTable(pending.transactions) :
      h("div", {class: "empty"}, "Nothing pending: every transaction is decided and acknowledged."),
    h("p", {class: "hint"}, "Up since " + new Date(o.started_at).toISOString().replace("T", " ").slice(0, 19) + " UTC · " +
      o.submitted + " submitted · " + o.remembered + " finished transactions remembered · raw metrics at ", h("a", {href: "/metrics"}, "/metrics")));
}

// probeCell is what the health probes saw of participant p, apart from its
// traffic: a frozen participant fails them with no transaction under way.
function probeCell(p, now) {
  const kind = {ok: "ok", failing: "failing", waiting: "waiting"}[p.probe] || "idle";
  let note = "not probed";
  if (p.probe === "ok") note = "answered " + ago(p.probe_last_ok, now);
  else if (p.probe === "failing") note = p.probe_failures + " in a row since " + ago(p.probe_last_error_at, now) + ": " + p.probe_last_error;
  else if (p.probe === "waiting") note = "first probe pending";
  return [badge(p.probe || "off", kind), " ", h("span", {class: "hint"}, note)];
}

function branchSummary(t) {
  return t.branches.map(b => {
    let note = b.vote === "none" ? "no vote" : b.vote;
    if (b.acknowledged) note += ", acked";
    else if (t.state === "committed" && b.vote === "yes") note += ", awaiting ack" + (b.attempts ? " (" + b.attempts + " tries)" : "");
    return h("span", {class: "mono"}, b.participant + " ", badge(note, b.acknowledged ? "acknowledged" : (note.includes("awaiting") ? "waiting" : b.vote)), " ");
  });
}

// lastError is the errors of the branches still waiting: one a participant
// has since acknowledged is history (the timeline keeps it), not a problem.
function lastError(t) {
  const errs = t.branches.filter(b => b.last_error && !b.acknowledged).map(b => b.participant + ": " + b.last_error);
  return errs.join("; ");
}

function txTable(list) {
  return h("table", {id: "tx-table"},
    h("thead", {}, h("tr", {}, ["Transaction", "State", "Participants (vote, acknowledgement)", "Reason or last error"].map(t => h("th", {}, t)))),
    h("tbody", {}, list.map(t => h("tr", {"data-id": t.id, "data-state": t.state},
      h("td", {}, h("a", {href: "#/tx/" + encodeURIComponent(t.id), class: "mono"}, t.id)),
      h("td", {}, badge(t.state), t.done ? null : [" ", badge(t.state === "preparing" ? "undecided" : "not done", "pending")]),
      h("td", {}, branchSummary(t)),
      lastError(t) ? h("td", {class: "err"}, lastError(t)) : h("td", {}, t.state === "aborted" ? t.reason || "" : "")))));
}

async function loadList(r) {
  const state = r.params.get("state") || "all";
  const part = r.params.get("participant") || "";
  const limit = r.params.get("limit") || "200";
  const q = new URLSearchParams({state, limit});
  if (part) q.set("participant", part);
  const [list, o] = await Promise.all([api("/v1/transactions?" + q), participants.length ? null : api("/v1/overview")]);
  if (o) participants = o.participants.map(p => p.name);
  const go = () => {
    const q2 = new URLSearchParams({state: stateSel.value});
    if (partSel.value) q2.set("participant", partSel.value);
    location.hash = "#/transactions?" + q2;
  };
  const stateSel = h("select", {id: "f-state", onchange: go},
    [["all", "all"], ["pending", "pending (undecided or awaiting acks)"], ["committed", "committed"], ["aborted", "aborted"]]
      .map(([v, l]) => h("option", {value: v, selected: v === state}, l)));
  const partSel = h("select", {id: "f-participant", onchange: go},
    h("option", {value: ""}, "any"), participants.map(p => h("option", {value: p, selected: p === part}, p)));
  render(
    h("h1", {}, "Transactions"),
    h("div", {class: "filters"},
      h("label", {}, "State", stateSel), h("label", {}, "Participant", partSel),
      h("span", {class: "hint"}, list.transactions.length + " shown (at most " + limit + ", sorted by id)")),
    list.transactions.length ? txTable(list.transactions) :
      h("div", {class: "empty", id: "tx-empty"}, "No " + (state === "all" ? "" : state + " ") + "transactions" + (part ? " at " + part : "") + "."));
}

let actionMsg = null; // {ok, text} shown on the transaction page until it is left

async function loadTx(r) {
  let tl;
  try {
    tl = await api("/v1/transactions/" + encodeURIComponent(r.id) + "/timeline");
  } catch (e) {
    if (e.status === 404) {
      render(h("h1", {}, "Transaction ", h("span", {class: "mono"}, r.id)), h("div", {class: "empty"}, "The coordinator does not know this transaction (" + e.message + ")."));
      return;
    }
    throw e;
  }
  const st = tl.status;
  const unacked = st.branches.filter(b => !b.acknowledged && b.vote === "yes");
  const canRetry = !st.done && st.state !== "preparing" && unacked.length > 0;
  const canAbort = st.state === "preparing";
  const first = tl.events.length ? new Date(tl.events[0].at).getTime() : 0;
  render(
    h("p", {}, h("a", {href: "#/transactions"}, "← all transactions")),
    h("h1", {}, "Transaction ", h("span", {class: "mono", id: "tx-id"}, st.id), " ", h("span", {id: "tx-state"}, badge(st.state)),
      st.done ? h("span", {}, " ", badge("done")) : h("span", {}, " ", badge("not done", "pending"))),
    h("dl", {class: "kv"},
      h("dt", {}, "State"), h("dd", {}, stateText(st)),
      st.reason ? [h("dt", {}, "Reason"), h("dd", {}, st.reason)] : null,
      tl.traceparent ? [h("dt", {}, "Trace"), h("dd", {class: "mono"}, tl.traceparent)] : null),
    h("div", {class: "actions"},
      h("button", {id: "btn-retry", class: "primary", disabled: !canRetry, onclick: () => retryTx(st, unacked)}, "Retry now"),
      h("button", {id: "btn-abort", class: "danger", disabled: !canAbort, onclick: () => abortTx(st)}, "Abort"),
      h("span", {class: "hint"}, canRetry ? "Resends the decision now to " + unacked.map(b => b.participant).join(", ") + " instead of waiting for the backoff." :
        canAbort ? "No decision yet: aborting tells every participant to roll back." :
        st.state === "committed" ? "Committed: it can never be aborted." : "Nothing to do.")),
    actionMsg ? h("div", {id: "action-msg", class: "msg " + (actionMsg.ok ? "ok" : "bad")}, actionMsg.text) : null,
    h("h2", {}, "Participants"),
    h("table", {id: "branches"},
      h("thead", {}, h("tr", {}, ["Participant", "Vote", "Acknowledged", "Attempts", "Last error", "Next retry", "Reason"].map(t => h("th", {}, t)))),
      h("tbody", {}, st.branches.map(b => h("tr", {"data-participant": b.participant},
        h("td", {class: "mono"}, b.participant), h("td", {}, badge(b.vote)),
        h("td", {}, b.acknowledged ? badge("yes", "acknowledged") : (st.state === "committed" && b.vote === "yes" ? badge("waiting") : "–")),
        h("td", {class: "num"}, b.attempts || 0), h("td", {class: b.acknowledged ? "hint" : "err"}, b.last_error ? (b.acknowledged ? "before: " : "") + b.last_error : ""),
        h("td", {}, b.next_retry ? inTime(b.next_retry) + " (" + clock(b.next_retry) + ")" : "–"), h("td", {}, b.reason || ""))))),
    h("h2", {}, "Timeline"),
    tl.events.length ? h("ol", {class: "timeline", id: "timeline"},
      tl.events.map((e, i) => [
        i === 16 && tl.dropped ? h("li", {class: "hint"}, h("span", {}, ""), h("span", {}, "…"), h("span", {}, ""), h("span", {}, tl.dropped + " older events not kept")) : null,
        h("li", {"data-kind": e.kind, "data-participant": e.participant || ""},
          h("span", {class: "t", title: e.at}, clock(e.at).slice(0, 12), h("br"), "+" + (new Date(e.at).getTime() - first) + " ms"),
          h("span", {}, badge(eventLabel(e), e.kind)),
          h("span", {class: "who mono"}, e.participant || ""),
          h("span", {}, eventText(e)))])) :
      h("div", {class: "empty"}, "No history kept for this transaction (it finished long ago, or before the coordinator restarted)."));
}

function stateText(st) {
  if (st.state === "preparing") return "collecting votes: no decision yet";
  const waiting = st.branches.filter(b => !b.acknowledged && b.vote === "yes").map(b => b.participant);
  if (st.state === "committed") return st.done ? "committed; every participant confirmed" : "committed; waiting for " + waiting.join(", ") + " to acknowledge";
  return "aborted" + (st.done ? "" : "; telling participants");
}

function eventLabel(e) {
  switch (e.kind) {
    case "vote": return "vote " + e.value;
    case "decision": return "decision: " + e.value;
    case "prepare-sent": return e.attempt > 1 ? "PREPARE #" + e.attempt : "PREPARE sent";
    case "commit-sent": return e.attempt > 1 ? "COMMIT retry #" + (e.attempt - 1) : "COMMIT sent";
    case "abort-sent": return e.attempt > 1 ? "ABORT retry #" + (e.attempt - 1) : "ABORT sent";
    case "delivery-failed": return "delivery failed";
    case "acknowledged": return "acknowledged";
    case "resolved": return "resolved: " + e.value;
    case "end": return "END";
    case "operator-retry": return "operator: retry";
    case "operator-abort": return "operator: abort";
  }
  return e.kind;
}

function eventText(e) {
  const d = e.detail || "";
  switch (e.kind) {
    case "submitted": return "client submitted the transaction" + (d ? " (" + d + ")" : "");
    case "vote": return d;
    case "acknowledged": return "the participant applied the decision";
  }
  return d;
}

function confirmDialog(title, text, withReason) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-ok").className = withReason ? "danger" : "primary";
  document.getElementById("confirm-ok").textContent = withReason ? "Abort transaction" : "Retry now";
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-reason-label").hidden = !withReason;
  document.getElementById("confirm-reason").value = "";
  return new Promise(resolve => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok" ? document.getElementById("confirm-reason").value : null), {once: true});
    dlg.returnValue = "";
    dlg.showModal();
  });
}

async function act(st, action, body) {
  clearTimeout(timer);
  try {
    const res = await api("/v1/transactions/" + encodeURIComponent(st.id) + "/" + action,
      {method: "POST", headers: {"Content-Type": "application/json", "Accept": "application/json"}, body: JSON.stringify(body || {})});
    actionMsg = {ok: true, text: action === "retry" ? "Retry sent: the decision is on its way again." : "Abort requested: " + (res.state || "")};
  } catch (e) {
    actionMsg = {ok: false, text: action + " refused: " + e.message};
  }
  refresh();
}

async function retryTx(st, unacked) {
  const ok = await confirmDialog("Retry now?", "Send the " + st.state.toUpperCase() + " decision of " + st.id + " again now to " +
    unacked.map(b => b.participant).join(", ") + ". This is safe: a participant that already applied it answers the same way again.", false);
  if (ok !== null) act(st, "retry");
}

async function abortTx(st) {
  const reason = await confirmDialog("Abort this transaction?", "Abort " + st.id + ": it has no decision yet, and every participant will be told to roll back its reservation. This cannot be undone.", true);
  if (reason !== null) act(st, "abort", reason ? {reason} : {});
}

window.addEventListener("hashchange", () => { actionMsg = null; refresh(); });
document.getElementById("signin-form").addEventListener("submit", signIn);
document.getElementById("signout").addEventListener("click", signOut);
setToken(token());
refresh();
