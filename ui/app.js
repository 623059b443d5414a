// The dashboard shell: login, navigation by role, a hash router and the live event stream.
import { api, ApiError, h, notice, setSession, sizeBars } from "./lib.js";

const VIEWS = [
  { path: "fleet", title: "Fleet", needs: "devices:read", load: () => import("./views/fleet.js") },
  { path: "devices", title: "Devices", needs: "devices:read", load: () => import("./views/devices.js"), detail: () => import("./views/device.js") },
  { path: "security", title: "Security", needs: "audit:read", load: () => import("./views/security.js") },
  { path: "certificates", title: "Certificates", needs: "certs:read", load: () => import("./views/certificates.js"), detail: () => import("./views/certificate.js") },
  { path: "audit", title: "Audit", needs: "audit:read", load: () => import("./views/audit.js") },
  { path: "scans", title: "Scans", needs: "scans:read", load: () => import("./views/scans.js") },
  { path: "ota", title: "OTA", needs: "ota:read", load: () => import("./views/ota.js") },
  { path: "compliance", title: "Compliance", needs: "compliance:read", load: () => import("./views/compliance.js") },
];

const state = { session: null, view: null, live: null, listeners: new Set(), rendering: 0 };
const $ = (id) => document.getElementById(id);

function showLogin(message) {
  state.session = null;
  state.live?.close();
  state.live = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  for (const child of [...$("view").children]) if (child.id !== "login") child.remove();
  $("login").hidden = false;
  $("login-error").textContent = message ?? "";
  $("token").focus();
}

async function start() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    try {
      const response = await fetch("/ui/session", { method: "POST", headers: { "content-type": "application/json" }, credentials: "same-origin", body: JSON.stringify({ token }) });
      const data = await response.json();
      if (!response.ok) throw new ApiError(response.status, data);
      signedIn(data);
    } catch (error) {
      $("login-error").textContent = error.code === "AUTH_TOKEN_INVALID" ? "That API token is not valid (unknown, expired or revoked)." : `Sign-in failed: ${error.message}`;
    }
  });
  $("logout").addEventListener("click", async () => {
    await api("DELETE", "/ui/session").catch(() => {});
    showLogin("You are logged out.");
  });
  window.addEventListener("hashchange", () => route());
  window.addEventListener("resize", () => document.querySelectorAll(".chart").forEach((c) => c.resize?.()));
  const response = await fetch("/ui/session", { credentials: "same-origin" });
  if (response.ok) signedIn(await response.json());
  else showLogin();
}

function signedIn(session) {
  state.session = session;
  setSession(session.csrf, () => showLogin("Your session has ended. Sign in again."));
  $("login").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = `${session.operator.name} (${session.operator.role})`;
  const nav = $("nav");
  nav.replaceChildren(...VIEWS.filter((v) => session.allowed[v.needs]).map((v) => h("a", { href: `#/${v.path}`, "data-view": v.path }, v.title)));
  nav.hidden = false;
  follow();
  route();
}

/** EventSource on the live stream (the session cookie authenticates it); views subscribe to events. */
function follow() {
  if (!state.session.allowed["events:read"] || state.live) return;
  const source = new EventSource("/v1/events/stream");
  state.live = source;
  source.onopen = () => ($("live").textContent = "live");
  source.onerror = () => ($("live").textContent = "reconnecting");
  source.addEventListener("end", () => {
    source.close();
    state.live = null;
    $("live").textContent = "offline";
    // The token was revoked or expired: the session is gone too.
    void fetch("/ui/session", { credentials: "same-origin" }).then((r) => (r.ok ? undefined : showLogin("Your token was revoked or expired. Sign in again.")));
  });
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    for (const listener of state.listeners) listener(event);
  };
}

async function route() {
  if (!state.session) return;
  const [path, ...rest] = (location.hash.replace(/^#\/?/, "").split("?")[0] || "fleet").split("/");
  const allowed = VIEWS.filter((v) => state.session.allowed[v.needs]);
  const view = allowed.find((v) => v.path === path) ?? allowed[0];
  for (const a of $("nav").querySelectorAll("a")) a.toggleAttribute("aria-current", a.dataset.view === view?.path);
  state.listeners.clear();
  const ticket = ++state.rendering;
  const main = $("view");
  const target = h("div", { class: "view", "data-view": view?.path ?? "none" });
  if (!view) {
    target.append(notice("Your role may not read any dashboard view.", "error"));
  } else {
    try {
      const module = rest.length > 0 && view.detail ? await view.detail() : await view.load();
      const ctx = {
        allowed: state.session.allowed,
        params: rest.map(decodeURIComponent),
        /** Called for each live event while this view is shown. */
        onEvent: (listener) => state.listeners.add(listener),
        refresh: () => route(),
      };
      target.append(await module.render(ctx));
    } catch (error) {
      target.append(notice(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error), "error"));
    }
  }
  if (ticket !== state.rendering) return;
  for (const child of [...main.children]) if (child.id !== "login") child.remove();
  main.append(target);
  sizeBars(target);
  document.title = `${view?.title ?? "Moat"} · Moat dashboard`;
}

void start();
