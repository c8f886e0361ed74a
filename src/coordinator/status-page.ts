import type { ShardStatus } from "./coordinator.ts";

export interface StatusEvent {
  readonly at: string;
  readonly kind: "move" | "scale" | "warning" | "shard" | "config";
  readonly text: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The status page: each shard's series against its budget as a bar, its targets, recent events. No script, no framework. */
export function renderStatusPage(opts: {
  shards: readonly (ShardStatus & { prometheusUrl?: string })[];
  events: readonly StatusEvent[];
  globalQueryUrl?: string;
  /** Set while the config on disk is invalid and the last good one runs. */
  configError?: string | null;
  /** Shards that are down: global queries answer an error (or, with partial responses, less) meanwhile. */
  missingShards?: readonly number[];
}): string {
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
<p>${s.series} / ${s.budget} series${s.effectiveBudget < s.budget ? ` · <span class="down">budget lowered to ${s.effectiveBudget} (restarts: ${s.restarts})</span>` : ""} · ${s.targets.length} targets${s.prometheusUrl ? ` · <a href="${esc(s.prometheusUrl)}">Prometheus</a>` : ""}</p>
<ul>${targets}</ul></section>`;
    })
    .join("\n");
  const events = opts.events
    .slice(-50)
    .reverse()
    .map((e) => `<li class="${e.kind}"><time>${esc(e.at)}</time> ${esc(e.text)}</li>`)
    .join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>promshard</title><style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}.shard{margin-bottom:1.5em}
.bar{width:40em;max-width:100%;height:1.2em;background:#eee;border:1px solid #aaa}.fill{height:100%;background:#3a7}
.fill.over{background:#c33}.down{color:#c33}code{background:#f4f4f4}li.warning{color:#a60}
</style></head><body><h1>promshard</h1>
<p>${opts.shards.length} shard(s)${opts.globalQueryUrl ? ` · global query: <a href="${esc(opts.globalQueryUrl)}">${esc(opts.globalQueryUrl)}</a>` : ""}</p>
${opts.configError ? `<p class="config-error down">The config file is invalid; the last good one keeps running: ${esc(opts.configError)}</p>` : ""}
${opts.missingShards?.length ? `<p class="missing down">The global view is incomplete: shard ${opts.missingShards.join(", ")} ${opts.missingShards.length > 1 ? "are" : "is"} down, and global queries fail until ${opts.missingShards.length > 1 ? "they are" : "it is"} back.</p>` : ""}
${shards}<h2>Recent moves and scaling</h2><ul>${events}</ul></body></html>`;
}
