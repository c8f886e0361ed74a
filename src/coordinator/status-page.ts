import type { Plan } from "./capacity-plan.ts";
import type { ShardStatus } from "./coordinator.ts";
import type { HistoryMark, HistoryPoint, SeriesHistory } from "./series-history.ts";

export interface StatusEvent {
  readonly at: string;
  readonly kind: "move" | "scale" | "warning" | "shard" | "config";
  readonly text: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A plot's size in CSS pixels (its viewBox too, so one unit is one pixel). */
export const PLOT = { width: 480, height: 72 } as const;
/** Headroom over the larger of the budget and the highest point. */
const PLOT_HEADROOM = 1.1;

const fmtTime = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/**
 * A small inline SVG of `points` over [from, to]: the series as a line, the budget as a
 * dashed line, moves and scalings as vertical lines with their text as a tooltip; the
 * aria-label says in words what the plot shows.
 */
function plot(opts: {
  label: string;
  points: readonly HistoryPoint[];
  marks: readonly HistoryMark[];
  from: number;
  to: number;
  budget?: number;
}): string {
  const { width, height } = PLOT;
  const top = Math.max(opts.budget ?? 0, ...opts.points.map((p) => p.value), 1) * PLOT_HEADROOM;
  const x = (at: number) => (((at - opts.from) / (opts.to - opts.from)) * width).toFixed(1);
  const y = (v: number) => (height - (v / top) * height).toFixed(1);
  const line =
    opts.points.length === 0
      ? ""
      : `<polyline class="series" points="${opts.points.map((p) => `${x(p.at)},${y(p.value)}`).join(" ")}"/>`;
  const budget =
    opts.budget === undefined
      ? ""
      : `<line class="budget" x1="0" x2="${width}" y1="${y(opts.budget)}" y2="${y(opts.budget)}"/>`;
  const marks = opts.marks
    .map(
      (m) =>
        `<g class="mark ${m.kind}"><title>${esc(`${fmtTime(m.at)} ${m.text}`)}</title><line x1="${x(m.at)}" x2="${x(m.at)}" y1="0" y2="${height}"/></g>`,
    )
    .join("");
  const moves = opts.marks.filter((m) => m.kind === "move").length;
  const last = opts.points.at(-1);
  const said = `${opts.label} from ${fmtTime(opts.from)} to ${fmtTime(opts.to)} UTC: ${last ? `${last.value} now` : "no data yet"}, ${moves} move(s), ${opts.marks.length - moves} scaling(s)`;
  return `<svg class="plot" role="img" aria-label="${esc(said)}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${budget}${line}${marks}</svg>`;
}

/** What the page says of the global view. */
export interface GlobalView {
  /** Thanos Query (local mode's global endpoint, or --thanos.query-url); absent: none configured. */
  readonly queryUrl?: string;
  /** Its count over the window, oldest first. */
  readonly points: readonly HistoryPoint[];
  /** Why the last query failed; null when it answered. */
  readonly error: string | null;
}

/** The what-if of `?max-series=N`: the plan for that budget, or why N is not one. */
export type WhatIf = { readonly plan: Plan } | { readonly error: string };

/**
 * The status page: each shard's series against its budget as a bar and over the last window
 * as a plot with its moves and the scalings, its targets; the global view's count; the
 * what-if of another budget (a GET form, so it works without script); recent events. No
 * script, no framework.
 */
export function renderStatusPage(opts: {
  shards: readonly (ShardStatus & { prometheusUrl?: string })[];
  events: readonly StatusEvent[];
  globalQueryUrl?: string;
  /** Set while the config on disk is invalid and the last good one runs. */
  configError?: string | null;
  /** Shards that are down: global queries answer an error (or, with partial responses, less) meanwhile. */
  missingShards?: readonly number[];
  /** The plots' data; no plots without it. */
  history?: { readonly now: number; readonly history: SeriesHistory };
  global?: GlobalView;
  /** null: the form alone (no budget asked yet); absent: no what-if here. */
  whatIf?: WhatIf | null;
}): string {
  const h = opts.history;
  const from = h ? h.now - h.history.windowMs : 0;
  const shards = opts.shards
    .map((s) => {
      const pct = s.budget > 0 ? Math.min(100, (100 * s.series) / s.budget) : 0;
      const over = s.series > s.budget;
      const targets = s.targets
        .map((t) => `<li><code>${esc(t.job)}</code> ${esc(t.target.labels.instance ?? t.id)} — ${t.series} series</li>`)
        .join("");
      return `<section class="shard" data-shard="${s.id}">
<h2>Shard ${s.id} ${s.healthy ? "" : '<span class="down">down</span>'}</h2>
<div class="bar" role="meter" aria-valuemin="0" aria-valuemax="${s.budget}" aria-valuenow="${s.series}" title="${s.series} of ${s.budget} series">
<div class="fill${over ? " over" : ""}" style="width:${pct.toFixed(1)}%"></div></div>
${h ? plot({ label: `series of shard ${s.id}`, points: h.history.shard(s.id, h.now), marks: h.history.marks(s.id, h.now), from, to: h.now, budget: s.budget }) : ""}
<p>${s.series} / ${s.budget} series${s.effectiveBudget < s.budget ? ` · <span class="down">budget lowered to ${s.effectiveBudget} (restarts: ${s.restarts})</span>` : ""} · ${s.targets.length} targets${s.prometheusUrl ? ` · <a href="${esc(s.prometheusUrl)}">Prometheus</a>` : ""}</p>
<ul>${targets}</ul></section>`;
    })
    .join("\n");
  const events = opts.events
    .slice(-50)
    .reverse()
    .map((e) => `<li class="${e.kind}"><time>${esc(e.at)}</time> ${esc(e.text)}</li>`)
    .join("");
  // A what-if's answer is read, and its form typed into: no reload under the reader's hands.
  const refresh = opts.whatIf ? "" : '<meta http-equiv="refresh" content="5">';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">${refresh}
<title>promshard</title><style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}.shard{margin-bottom:1.5em}
.bar{width:40em;max-width:100%;height:1.2em;background:#eee;border:1px solid #aaa}.fill{height:100%;background:#3a7}
.fill.over{background:#c33}.down{color:#c33}code{background:#f4f4f4}li.warning{color:#a60}
.plot{display:block;margin-top:.4em;background:#fafafa;border:1px solid #ddd}.plot .series{fill:none;stroke:#36c;stroke-width:2}
.plot .budget{stroke:#999;stroke-dasharray:4 3}.plot .mark line{stroke-width:2}.plot .move line{stroke:#e80}.plot .scale line{stroke:#93c}
.legend .move{color:#e80}.legend .scale{color:#93c}.whatif table{border-collapse:collapse}.whatif td,.whatif th{padding:0 .8em 0 0;text-align:left}
</style></head><body><h1>promshard</h1>
<p>${opts.shards.length} shard(s)${opts.globalQueryUrl ? ` · global query: <a href="${esc(opts.globalQueryUrl)}">${esc(opts.globalQueryUrl)}</a>` : ""}</p>
${opts.configError ? `<p class="config-error down">The config file is invalid; the last good one keeps running: ${esc(opts.configError)}</p>` : ""}
${opts.missingShards?.length ? `<p class="missing down">The global view is incomplete: shard ${opts.missingShards.join(", ")} ${opts.missingShards.length > 1 ? "are" : "is"} down, and global queries fail until ${opts.missingShards.length > 1 ? "they are" : "it is"} back.</p>` : ""}
${h ? `<p class="legend">Plots: the last ${Math.round(h.history.windowMs / 60_000)} minutes, one point per ${h.history.stepMs / 1000} s; dashed: the budget; <span class="move">|</span> a move; <span class="scale">|</span> a scaling or split.</p>` : ""}
${opts.global ? globalSection(opts.global, opts.shards, h, from) : ""}
${opts.whatIf !== undefined ? whatIfSection(opts.whatIf, opts.shards) : ""}
${shards}<h2>Recent moves and scaling</h2><ul>${events}</ul></body></html>`;
}

function globalSection(
  g: GlobalView,
  shards: readonly ShardStatus[],
  h: { readonly now: number; readonly history: SeriesHistory } | undefined,
  from: number,
): string {
  const sum = shards.reduce((n, s) => n + s.series, 0);
  if (!g.queryUrl)
    return `<section class="global"><h2>Global view</h2><p class="none">No global query endpoint is configured (--thanos.query-url), so there is no global count; the shards hold ${sum} series together as the coordinator counts them (a moving target on both of its shards).</p></section>`;
  const last = g.points.at(-1);
  const count = last
    ? `<span class="count">${last.value}</span> series at ${fmtTime(last.at)} UTC (what its scrapes kept plus their own series), against ${sum} on the shards as the coordinator counts them`
    : "no count yet";
  return `<section class="global"><h2>Global view</h2><p>${count} · <a href="${esc(g.queryUrl)}">Thanos Query</a></p>
${g.error ? `<p class="global-error down">${esc(g.error)}</p>` : ""}
${h ? plot({ label: "series at the global view", points: g.points, marks: [], from, to: h.now }) : ""}</section>`;
}

function whatIfSection(w: WhatIf | null, shards: readonly ShardStatus[]): string {
  const running = shards.length;
  const value = w && "plan" in w ? String(w.plan.budget) : "";
  // Links as well as the form: the page without a what-if reloads every 5 s, a click does not care.
  const budget = shards[0]?.budget;
  const presets = budget
    ? ` or <span class="presets">${[0.5, 2]
        .map((f) => Math.max(1, Math.round(budget * f)))
        .map((n) => `<a href="?max-series=${n}">${n}</a>`)
        .join(" · ")}</span>`
    : "";
  const form = `<form method="get"><label>What if a shard held <input name="max-series" type="number" min="1" step="1" value="${value}" required> series?</label> <button>Plan</button>${presets}</form>`;
  if (w === null) return `<section class="whatif"><h2>What if</h2>${form}</section>`;
  if ("error" in w)
    return `<section class="whatif"><h2>What if</h2>${form}<p class="whatif-error down">${esc(w.error)}</p></section>`;
  const p = w.plan;
  const rows = p.perShard
    .map(
      (s) =>
        `<tr data-shard="${s.shard}"><td>${s.shard}</td><td>${s.series}</td><td>${s.targets.length}</td><td>${[
          ...s.targets,
        ]
          .sort((a, b) => b.series - a.series)
          .slice(0, 5)
          .map((t) => esc(`${t.job}/${t.instance}${t.parts ? ` (part ${t.part}/${t.parts})` : ""}`))
          .join(", ")}${s.targets.length > 5 ? ", …" : ""}</td></tr>`,
    )
    .join("");
  return `<section class="whatif"><h2>What if</h2>${form}
<p class="answer">A budget of ${p.budget} series needs <strong>${p.shards}</strong> shard(s) for ${p.targets} targets and ${p.totalSeries} series (now: ${running}), as <code>promshard plan --shard.max-series=${p.budget}</code> would plan them with these measurements.</p>
${p.warnings.map((x) => `<p class="down">${esc(x)}</p>`).join("")}
<table><thead><tr><th>Shard</th><th>Series</th><th>Targets</th><th>Largest targets</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}
