// Shared helpers of the dashboard: the API client (session cookie + CSRF header), safe element building
// (text only, never HTML strings), tables, formatting and charts.

let csrf = "";
let onUnauthorized = () => {};

export function setSession(token, unauthorized) {
  csrf = token;
  onUnauthorized = unauthorized;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? "HTTP_" + status;
  }
}

/** Calls the API with the session cookie; state-changing calls carry the session's CSRF token. */
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrf;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.status === 401) onUnauthorized();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Builds an element: h("a", { href: "#/x", class: "y" }, "text", child). Strings become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export const link = (href, text) => h("a", { href }, text);
export const deviceLink = (id) => link(`#/devices/${encodeURIComponent(id)}`, id);
export const certLink = (serial) => link(`#/certificates/${encodeURIComponent(serial)}`, serial);

/** A table with a caption and column headers; rows are arrays of cells (text or elements). */
export function table(caption, columns, rows, empty = "Nothing to show.") {
  if (rows.length === 0) return h("div", { class: "table-wrap" }, h("p", { class: "empty" }, `${caption}: ${empty}`));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell ?? "—"))))),
    ),
  );
}

/** Key figures as a row of tiles. */
export function tiles(items) {
  return h("div", { class: "tiles" }, items.map(([label, value, note, id]) => h("div", { class: "tile", ...(id ? { id } : {}) }, h("span", { class: "tile-label" }, label), h("strong", { class: "tile-value" }, String(value)), note ? h("span", { class: "tile-note" }, note) : null)));
}

export function time(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function section(title, ...children) {
  return h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), ...children);
}

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).replace(/[^a-z0-9_-]/gi, "")}` }, text);
}

export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A horizontal bar list (share of a whole), readable without colour and on a phone. */
export function bars(caption, entries) {
  const total = entries.reduce((a, [, n]) => a + n, 0) || 1;
  return h(
    "figure",
    { class: "bars" },
    h("figcaption", {}, caption),
    h("ul", {}, entries.map(([label, n]) => h("li", {}, h("span", { class: "bar-label" }, label), h("span", { class: "bar", style: null, "data-share": Math.round((n / total) * 100) }, h("span", { class: "bar-fill" })), h("span", { class: "bar-value" }, `${n} (${Math.round((n / total) * 100)} %)`)))),
  );
}

/** Sizes bar fills through the CSSOM (the CSP forbids style attributes in markup). */
export function sizeBars(root) {
  for (const bar of root.querySelectorAll(".bar[data-share]")) bar.firstElementChild.style.width = `${bar.dataset.share}%`;
}

/** A time-series chart with the locally served uPlot (no CDN). */
export async function lineChart(title, times, series) {
  const { default: uPlot } = await import("/ui/vendor/uPlot.esm.js");
  const holder = h("figure", { class: "chart" }, h("figcaption", {}, title));
  const width = () => Math.max(280, Math.min(900, (document.getElementById("view")?.clientWidth ?? 900) - 48));
  const palette = ["#c0392b", "#8e44ad", "#2c7fb8", "#e67e22"];
  const plot = new uPlot(
    {
      width: width(),
      height: 220,
      series: [{}, ...series.map(([label], i) => ({ label, stroke: palette[i % palette.length], width: 2 }))],
      axes: [{}, { size: 50 }],
      scales: { x: { time: true } },
    },
    [times.map((t) => Date.parse(t) / 1000), ...series.map(([, values]) => values)],
    holder,
  );
  holder.resize = () => plot.setSize({ width: width(), height: 220 });
  return holder;
}
